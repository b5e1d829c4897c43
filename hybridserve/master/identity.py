"""``--user``/``--group``/``--umask``: who the workers run as, checked once in the master."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from hybridserve.config import Config
from hybridserve.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Identity:
    """Resolved ids to switch to in each worker; None keeps the master's."""

    uid: int | None
    gid: int | None

    def apply(self) -> None:
        """Drop to this identity; called in a worker right after the fork."""
        if self.gid is not None and self.gid != os.getegid():
            os.setgroups([])
            os.setgid(self.gid)
        if self.uid is not None and self.uid != os.geteuid():
            os.setuid(self.uid)


def resolve(config: Config) -> Identity:
    """Turn names or numbers into ids; raises ConfigError naming what is wrong."""
    uid = gid = None
    if config.user is not None:
        try:
            entry = (
                pwd.getpwuid(int(config.user))
                if config.user.isdigit()
                else pwd.getpwnam(config.user)
            )
        except KeyError:
            raise ConfigError(f"user {config.user!r} does not exist") from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if config.group is not None:
        try:
            group = (
                grp.getgrgid(int(config.group))
                if config.group.isdigit()
                else grp.getgrnam(config.group)
            )
        except KeyError:
            raise ConfigError(f"group {config.group!r} does not exist") from None
        gid = group.gr_gid
    wants_change = (uid is not None and uid != os.geteuid()) or (
        gid is not None and gid != os.getegid()
    )
    if wants_change and os.geteuid() != 0:
        raise ConfigError("user/group can only be changed when started as root")
    return Identity(uid, gid)


def apply_umask(config: Config) -> None:
    if config.umask is not None:
        os.umask(int(config.umask, 8))
