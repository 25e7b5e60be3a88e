"""Numbers as model cards write them: 284.12B parameters, 61.60 GB."""


def human_count(value: int) -> str:
    """284123456789 -> '284.12B': parameter counts as model cards write them."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


def human_bytes(value: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


def human_gib(value: int) -> str:
    """Memory sizes as the preflight speaks of them: binary gigabytes."""
    return f"{value / (1 << 30):.1f} GiB"
