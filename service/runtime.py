"""The process-wide services of this program: pim's Runtime, running the jobs of jobs/."""

from collections.abc import Iterator, Mapping

from pim.jobs import JobFunction
from pim.runtime import Runtime
from pim.settings import Settings


def build_runtime(settings: Settings) -> Runtime:
    return Runtime.from_settings(settings, jobs=_Jobs())


class _Jobs(Mapping[str, JobFunction]):
    """jobs.REGISTRY, imported when a job first runs in this process: a command that runs
    none (`pim keys list`) does not load the imports' CSV reader or the platform clients."""

    def __getitem__(self, name: str) -> JobFunction:
        return self._registry()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())

    @staticmethod
    def _registry() -> Mapping[str, JobFunction]:
        from jobs import REGISTRY

        return REGISTRY
