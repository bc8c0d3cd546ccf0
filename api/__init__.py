"""CityScore API: a city's performance metrics, scored against targets, as open data."""
