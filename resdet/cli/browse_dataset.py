"""Draw the ground truth (boxes, class names, masks) of a config's dataset after its pipeline."""
from ._errors import command
from ._planned import planned_main


@command("browse-dataset")
def main(argv=None) -> int:
    return planned_main("browse-dataset", __doc__,
                        "resdet browse-dataset CONFIG [--split train|val] [--max N] [--out DIR] [--no-pipeline]",
                        argv)
