"""The prediction core. It imports no protocol library: adapters wrap it."""
