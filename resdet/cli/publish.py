"""Write a weights-only file (no optimizer, scheduler or RNG state) with the config and the
class names, its name carrying the first 8 hex digits of its sha256."""
from ._errors import command
from ._planned import planned_main


@command("publish")
def main(argv=None) -> int:
    return planned_main("publish", __doc__, "resdet publish CHECKPOINT OUT", argv)
