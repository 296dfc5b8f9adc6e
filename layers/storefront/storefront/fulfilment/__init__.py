"""Fulfilment: paid orders become shipments with a carrier (3PL), whose tracking updates move them on."""
