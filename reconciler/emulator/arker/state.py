"""Everything one Arker emulator instance holds: settings, orgs, the store and transfer state."""

from __future__ import annotations

from ..settings import EmulatorSettings
from .auth import OrgDirectory
from .goldens import seed_goldens
from .persistence import MemoryPersistence, Persistence, SqlitePersistence
from .store import Store
from .transfers import Transfers

__all__ = ["ArkerState"]


class ArkerState:
    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.orgs = OrgDirectory(settings.api_keys)
        persistence: Persistence = (
            SqlitePersistence(settings.db_path) if settings.db_path is not None else MemoryPersistence()
        )
        self.store = Store(persistence)
        seed_goldens(self.store)
        self.store.load()
        self.transfers = Transfers(settings.presign_ttl_seconds)

    def reset(self) -> None:
        """Back to the goldens only (the persisted data is erased too)."""
        with self.store.lock:
            self.store.reset()
            seed_goldens(self.store)
        self.transfers.clear()

    def close(self) -> None:
        self.store.close()
