"""CSV cells a spreadsheet will not execute."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Prefix a cell that a spreadsheet would read as a formula with a single quote."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value
