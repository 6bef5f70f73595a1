"""One 'did you mean' wording for every misspelt name."""

from resdet.utils.hints import close_names, did_you_mean, format_hint


def test_hint_names_the_closest_choices_or_nothing():
    assert did_you_mean("max_iter", ["max_iters", "seed"]) == " (did you mean 'max_iters'?)"
    assert did_you_mean("ResNett", ["ResNet", "VGG"], paren=False) == "; did you mean 'ResNet'?"
    assert did_you_mean("zzz", ["ResNet"]) == ""
    assert close_names("TOP1".lower(), ["top1", "top5", "loc"], n=2) == ["top1", "top5"]
    assert format_hint(["a", "b"], paren=False) == "; did you mean 'a', 'b'?" and format_hint([]) == ""
