"""customer-api."""
