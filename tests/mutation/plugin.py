"""A pytest plugin for mutmut's test runs (``[tool.mutmut] pytest_add_cli_args``
in pyproject.toml): every mutant is judged on the same hypothesis examples
(derandomized, no example database), and a failure is not shrunk (a mutant is
killed by the first failing example; shrinking it would only cost time)."""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    print_blob=False,
)
settings.load_profile("mutation")
