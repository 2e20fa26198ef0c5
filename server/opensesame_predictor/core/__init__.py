"""The prediction core: no protocol library, no sessions, no Settings; the service wraps it."""
