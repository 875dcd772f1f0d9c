"""Version values: a zero-padded serial (``004``) or a PEP 440 version (``0.7.5``).

Serials compare numerically and keep their width when stepped; packaging is
imported only where a value is compared (about 3 ms of start-up otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy.errors import ConfigError

if TYPE_CHECKING:  # packaging is imported where versions are parsed (~10 ms)
    from packaging.version import Version as Pep440

SERIAL = re.compile(r"[0-9]+\Z")
PLAIN_RELEASE = re.compile(r"[0-9]+(\.[0-9]+)+\Z")
# The most digits one number of a version may have. A serial's value, and each release
# number of a PEP 440 version, is an int made from its digits, and Python refuses to make
# one from more than 4300 (ValueError, CVE-2020-10735); no real version comes near 64.
MAX_DIGITS = 64
DIGITS = re.compile(r"[0-9]+")


class Version(NamedTuple):
    """A parsed version: the text as written, whether it is a serial, and its value.

    Serials compare numerically (``010`` > ``009``, ``1000`` > ``999``); their value
    is the PEP 440 version of the number, so ``004`` meets ``>=3`` and ``>=002``.
    """

    text: str
    serial: bool

    @property
    def value(self) -> Pep440:
        """The PEP 440 value, made when compared (packaging costs ~3 ms to import)."""
        from packaging.version import Version as Pep440

        return Pep440(str(int(self.text)) if self.serial else self.text)

    def __str__(self) -> str:
        return self.text


def check_digits(text: str, where: Path | str = "version") -> None:
    """ConfigError naming ``where`` when a number in ``text`` has more than MAX_DIGITS digits."""
    longest = max(map(len, DIGITS.findall(text)), default=0)
    if longest > MAX_DIGITS:
        raise ConfigError(f"{where}: the version has a number of {longest} digits; at most "
                          f"{MAX_DIGITS} digits per number")


def parse(text: str, where: Path | str = "version") -> Version:
    """Parse a serial (all ASCII digits) or a PEP 440 version; else ConfigError naming ``where``."""
    text = text.strip()
    check_digits(text, where)
    if SERIAL.match(text):
        return Version(text, True)
    if PLAIN_RELEASE.match(text):
        return Version(text, False)  # 0.7.5: valid PEP 440 without asking packaging
    from packaging.version import InvalidVersion
    from packaging.version import Version as Pep440

    try:
        Pep440(text)
    except InvalidVersion as err:
        raise ConfigError(
            f"{where}: {text!r} is neither a serial like 004 nor a PEP 440 version like "
            "0.7.5") from err
    return Version(text, False)


def next_version(current: Version) -> Version:
    """The next version: a serial plus one at the same width (``009`` -> ``010``, ``999`` ->
    ``1000``); a PEP 440 version's next patch (``0.7.5`` -> ``0.7.6``, ``0.7`` -> ``0.7.1``).

    A pre-release or dev release steps to its own final release (``0.8.0rc1`` ->
    ``0.8.0``); post and local parts are dropped. The epoch and a leading ``v`` stay.
    """
    if current.serial:
        return parse(str(int(current.text) + 1).zfill(len(current.text)))
    value = current.value
    final = _spell(current, value.release)
    if final.value > value:
        return final
    release = [*value.release[:3], 0, 0][:3]
    release[2] += 1
    return _spell(current, tuple(release))


def _spell(current: Version, release: tuple[int, ...]) -> Version:
    """A release written the way ``current`` is: its epoch and any leading ``v`` kept."""
    text = ".".join(str(part) for part in release)
    if current.value.epoch:
        text = f"{current.value.epoch}!{text}"
    if current.text[:1] in {"v", "V"}:
        text = current.text[0] + text
    return parse(text)
