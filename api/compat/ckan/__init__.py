"""CKAN's Action API over Boston's CityScore package and resources."""
