"""Boston's CityScore method as pure functions: windows, aggregates, scores. No I/O."""
