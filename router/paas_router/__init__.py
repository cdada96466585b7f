"""paas_router: HAProxy config rendered from a route model, and the HAProxy process it drives."""
