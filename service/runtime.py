"""The process-wide services of this program: pim's Runtime, running the jobs of jobs/."""

from jobs import REGISTRY
from pim.runtime import Runtime
from pim.settings import Settings


def build_runtime(settings: Settings) -> Runtime:
    return Runtime.from_settings(settings, jobs=REGISTRY)
