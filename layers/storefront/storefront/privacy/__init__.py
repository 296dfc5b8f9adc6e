"""Privacy: erasing a shopper's personal data from their orders, keeping what the books need."""
