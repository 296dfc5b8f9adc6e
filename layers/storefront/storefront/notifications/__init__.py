"""Customer emails (order confirmation, payment problems, shipping, refunds), driven by integration events.

Kept free of imports: shop.py uses `addresses` at every function's cold start, and only the notifications
function may pay for Jinja2 and Babel (content.py).
"""
