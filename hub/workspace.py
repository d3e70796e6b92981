"""A workspace: the folders and files of one hub installation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

ENV_HOME = "CEBHUB_HOME"  # selects the workspace when -w is not given


@dataclass(frozen=True)
class Workspace:
    """Paths of a workspace rooted at `root` (design §4); each is worked out once."""

    root: Path

    @classmethod
    def locate(cls, given: str | os.PathLike | None = None) -> Workspace:
        """The workspace named by -w, else $CEBHUB_HOME, else the current directory."""
        chosen = given or os.environ.get(ENV_HOME) or os.getcwd()
        return cls(Path(chosen).resolve())

    @cached_property
    def config_dir(self) -> Path:
        return self.root / "config"

    @cached_property
    def config_file(self) -> Path:
        return self.config_dir / "hub.toml"

    @cached_property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @cached_property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @cached_property
    def archive(self) -> Path:
        return self.root / "archive"

    @cached_property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @cached_property
    def claims(self) -> Path:
        """Where inbox files are renamed to before they are read."""
        return self.root / "claims"

    @cached_property
    def keys(self) -> Path:
        """The hub's own signing key and certificate, and partner certificates."""
        return self.root / "keys"

    @cached_property
    def partner_certs(self) -> Path:
        return self.keys / "partners"

    @cached_property
    def database_file(self) -> Path:
        return self.root / "cebhub.db"

    def inbox_of(self, partner_id: str) -> Path:
        return self.inbox / partner_id

    def outbox_of(self, partner_id: str) -> Path:
        return self.outbox / partner_id

    def resolve(self, path: str | os.PathLike) -> Path:
        """A path from the configuration, relative to the workspace root."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def is_initialised(self) -> bool:
        return self.config_file.is_file()
