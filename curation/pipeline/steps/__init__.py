"""Built-in steps."""
