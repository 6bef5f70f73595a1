"""Export a model to one ONNX file with pre- and post-processing inside, or a torch.export program."""
from ._errors import command
from ._planned import planned_main


@command("export")
def main(argv=None) -> int:
    return planned_main("export", __doc__, "resdet export CONFIG CHECKPOINT --format onnx|torch-export --out FILE",
                        argv)
