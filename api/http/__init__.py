"""Domain-free HTTP machinery: formats, CSV streaming, paging, caching, rate limits."""
