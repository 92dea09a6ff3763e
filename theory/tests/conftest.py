"""Shared fixtures and hypothesis strategies for the theory tests.

Profiles: ``ci`` (derandomized, the default, so every run draws the same examples) and ``dev``
(random, more examples): ``pytest theory --hypothesis-profile=dev``.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=400, deadline=None)
settings.load_profile("ci")
