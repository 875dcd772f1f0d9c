"""Unit tests for deploy.versions: parsing, the next version, layout, plans and checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy import versions
from deploy.errors import BadName, ConfigError
from deploy.plan import Change


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# -- parse ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "serial", "value"), [
    pytest.param("004", True, "4", id="serial"),
    pytest.param("0000", True, "0", id="serial-zero"),
    pytest.param("0.7.5", False, "0.7.5", id="pep440"),
    pytest.param("v1.2", False, "1.2", id="pep440-v"),
    pytest.param("0.7.5-002", False, "0.7.5.post2", id="pep440-post"),
    pytest.param("1.0rc1", False, "1.0rc1", id="pep440-pre"),
])
def test_parse_reads_serials_and_pep440(text: str, serial: bool, value: str) -> None:
    """A version is a serial when all ASCII digits, else a PEP 440 version."""
    parsed = versions.parse(text)

    assert parsed.serial is serial
    assert str(parsed.value) == value
    assert parsed.text == text


@pytest.mark.parametrize("text", [
    pytest.param("abc", id="word"), pytest.param("1..2", id="empty-part"),
    pytest.param("", id="empty"), pytest.param("١٢٣", id="arabic-digits"),
])
def test_parse_rejects_garbage_naming_where(text: str) -> None:
    """Garbage is a ConfigError (exit 2) that names where it came from."""
    with pytest.raises(ConfigError) as caught:
        versions.parse(text, "/v/MEMORY_VERSION")

    assert "/v/MEMORY_VERSION" in str(caught.value)
    assert caught.value.exit_code == 2


def test_serials_compare_numerically() -> None:
    """``010`` is above ``009`` and ``1000`` above ``999``, unlike the strings."""
    assert versions.parse("010").value > versions.parse("009").value
    assert versions.parse("1000").value > versions.parse("999").value
    assert versions.parse("002").value == versions.parse("2").value


# -- next version -----------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "expected"), [
    pytest.param("009", "010", id="serial-carry"),
    pytest.param("999", "1000", id="serial-widens"),
    pytest.param("001", "002", id="serial"),
    pytest.param("7", "8", id="serial-unpadded"),
    pytest.param("0.7.5", "0.7.6", id="patch"),
    pytest.param("0.7", "0.7.1", id="two-parts"),
    pytest.param("1.2.3.4", "1.2.4", id="four-parts"),
    pytest.param("v1.2.3", "v1.2.4", id="leading-v"),
    pytest.param("1!2.0.0", "1!2.0.1", id="epoch"),
    pytest.param("0.8.0rc1", "0.8.0", id="pre-to-final"),
    pytest.param("0.7.5.dev3", "0.7.5", id="dev-to-final"),
    pytest.param("0.7.5-002", "0.7.6", id="post"),
    pytest.param("0.7.5.post1.dev1", "0.7.6", id="post-dev"),
    pytest.param("1.0+local", "1.0.1", id="local"),
])
def test_next_version(current: str, expected: str) -> None:
    """The next serial keeps its width; a PEP 440 version moves to its next patch."""
    assert versions.next_version(versions.parse(current)).text == expected


@given(number=st.integers(min_value=0, max_value=10**8), width=st.integers(1, 10))
def test_next_serial_is_higher_and_keeps_width(number: int, width: int) -> None:
    """The next serial is always one more and never narrower than the current one."""
    current = versions.parse(str(number).zfill(width))

    nxt = versions.next_version(current)

    assert int(nxt.text) == number + 1
    assert len(nxt.text) == max(width, len(str(number + 1)))


@given(release=st.lists(st.integers(0, 50), min_size=1, max_size=4),
       suffix=st.sampled_from(["", "rc1", ".dev2", ".post3", ".post1.dev1", "+abc"]))
def test_next_pep440_is_always_higher(release: list[int], suffix: str) -> None:
    """Whatever the PEP 440 version, the next one compares above it."""
    current = versions.parse(".".join(map(str, release)) + suffix)
    if current.serial:
        return

    assert versions.next_version(current).value > current.value


# -- reading files ----------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    pytest.param(b"004", id="no-newline"),
    pytest.param(b"004\n", id="newline"),
    pytest.param(b"004\r\n", id="crlf"),
    pytest.param(b"  004  \n\n", id="spaces"),
    pytest.param(b"\xef\xbb\xbf004\r\n", id="bom"),
])
def test_render_keeps_the_layout(tmp_path: Path, data: bytes) -> None:
    """Bumping changes the version's bytes and nothing around them."""
    write(tmp_path, {"MEMORY_VERSION": data})

    vfile = versions.read(tmp_path, "memory")

    assert vfile.render(vfile.version) == data
    assert vfile.render(versions.parse("005")) == data.replace(b"004", b"005")


@pytest.mark.parametrize(("data", "needle"), [
    pytest.param(b"", "found nothing", id="empty"),
    pytest.param(b" \n", "found nothing", id="blank"),
    pytest.param(b"004 005\n", "several words", id="two-words"),
    pytest.param(b"banana\n", "neither a serial", id="word"),
    pytest.param(b"\xff\xfe\n", "not ASCII", id="binary"),
])
def test_read_rejects_garbage_naming_the_file(tmp_path: Path, data: bytes, needle: str) -> None:
    """Garbled version files are ConfigErrors naming the file."""
    write(tmp_path, {"MEMORY_VERSION": data})

    with pytest.raises(ConfigError) as caught:
        versions.read(tmp_path, "memory")

    assert str(tmp_path / "MEMORY_VERSION") in str(caught.value)
    assert needle in str(caught.value)


def test_read_refuses_a_symlinked_version_file(tmp_path: Path) -> None:
    """A symlink in place of a version file is refused, never followed."""
    write(tmp_path, {"real": b"004\n"})
    (tmp_path / "MEMORY_VERSION").symlink_to(tmp_path / "real")

    with pytest.raises(ConfigError, match="symlink"):
        versions.read(tmp_path, "memory")


def test_subsystems_lists_only_version_files(tmp_path: Path) -> None:
    """Legacy backups, VERSION, temp files and lower-case names are not subsystems."""
    write(tmp_path, {"MEMORY_VERSION": b"003\n", "AGENTS_VERSION": b"004\n",
                     "MEMORY_VERSION.backup.20240101": b"002\n", "VERSION": b"0.7.5\n",
                     "notes_VERSION": b"1\n", ".MEMORY_VERSION.deploy-tmp-1-ab": b"9\n",
                     "_VERSION": b"1\n"})

    assert versions.subsystems(tmp_path) == ["agents", "memory"]
    assert {k: v.version.text for k, v in versions.read_all(tmp_path).items()} == {
        "agents": "004", "memory": "003"}
    assert versions.framework_version(tmp_path) == "0.7.5"


def test_missing_folder_and_framework_file(tmp_path: Path) -> None:
    """A missing versions folder is a ConfigError; a missing VERSION is None."""
    with pytest.raises(ConfigError, match="not found"):
        versions.subsystems(tmp_path / "nope")

    assert versions.framework_version(tmp_path) is None


@pytest.mark.parametrize("name", [
    pytest.param("../x", id="dotdot-slash"), pytest.param("a/b", id="slash"),
    pytest.param("..", id="dotdot"), pytest.param("-rf", id="dash"),
    pytest.param("", id="empty"), pytest.param("a\x00b", id="nul"),
    pytest.param("a b", id="space"), pytest.param("x" * 256, id="long"),
])
def test_hostile_subsystem_names_are_refused(tmp_path: Path, name: str) -> None:
    """Names that could leave the folder or confuse a shell are BadName (exit 2)."""
    with pytest.raises(BadName):
        versions.plan_bump(tmp_path, name, "1")


# -- plans ------------------------------------------------------------------------------------

def test_plan_bump_builds_one_change(tmp_path: Path) -> None:
    """A bump plans one versions change keyed by subsystem, targeting the file, mode kept."""
    write(tmp_path, {"MEMORY_VERSION": b"009\n"})
    os.chmod(tmp_path / "MEMORY_VERSION", 0o600)

    plan = versions.plan_bump(tmp_path, "MEMORY")

    assert plan.categories == ("versions",)
    (change,) = plan.changes
    assert (change.category, change.key, change.target) == (
        "versions", "memory", tmp_path / "MEMORY_VERSION")
    assert change.new == b"010\n"
    assert change.mode == 0o600
    assert change.note == "009 -> 010"


@pytest.mark.parametrize(("current", "to", "written"), [
    pytest.param(b"010\n", "11", b"011\n", id="padded-to-width"),
    pytest.param(b"010\n", "0011", b"0011\n", id="wider-kept"),
    pytest.param(b"0.7.5", "0.8.0", b"0.8.0", id="pep440"),
    pytest.param(b"010\n", "0.7.5.post99999", None, id="lower-pep440"),
])
def test_plan_bump_to(tmp_path: Path, current: bytes, to: str, written: bytes | None) -> None:
    """``--to`` must be higher; a shorter serial is padded to the file's width."""
    write(tmp_path, {"MEMORY_VERSION": current})

    if written is None:
        with pytest.raises(ConfigError, match="--allow-downgrade"):
            versions.plan_bump(tmp_path, "memory", to)
        return
    plan = versions.plan_bump(tmp_path, "memory", to)

    assert plan.changes[0].new == written


def test_plan_bump_downgrade_needs_allowing(tmp_path: Path) -> None:
    """Going back is refused unless allowed, then planned like any change."""
    write(tmp_path, {"MEMORY_VERSION": b"005\n"})

    with pytest.raises(ConfigError) as caught:
        versions.plan_bump(tmp_path, "memory", "004")
    plan = versions.plan_bump(tmp_path, "memory", "004", allow_downgrade=True)

    assert "004 is lower than the current 005" in str(caught.value)
    assert plan.changes[0].new == b"004\n"


@pytest.mark.parametrize("to", [pytest.param("005", id="same"),
                                pytest.param("5", id="same-unpadded"),
                                pytest.param("5.0", id="same-value")])
def test_plan_bump_to_same_version_is_a_skip(tmp_path: Path, to: str) -> None:
    """Setting the version a file already holds changes nothing."""
    write(tmp_path, {"MEMORY_VERSION": b"005\n"})

    plan = versions.plan_bump(tmp_path, "memory", to)

    assert plan.changes == ()
    assert [s.reason for s in plan.skips] == ["unchanged"]


def test_plan_bump_unknown_subsystem(tmp_path: Path) -> None:
    """A subsystem without a file is an error naming the file, unless created."""
    write(tmp_path, {})

    with pytest.raises(ConfigError) as caught:
        versions.plan_bump(tmp_path, "cache")
    plan = versions.plan_bump(tmp_path, "cache", "001", create=True)

    assert str(tmp_path / "CACHE_VERSION") in str(caught.value)
    (change,) = plan.changes
    assert (change.action, change.new, change.mode) == ("create", b"001\n", 0o644)


def test_plan_bump_create_needs_to(tmp_path: Path) -> None:
    """Creating a version file without saying which version is refused."""
    write(tmp_path, {})

    with pytest.raises(ConfigError, match="--create needs --to"):
        versions.plan_bump(tmp_path, "cache", create=True)


def test_plan_bulk_plans_every_item(tmp_path: Path) -> None:
    """Bulk plans each change; an item already at its version is skipped."""
    write(tmp_path, {"MEMORY_VERSION": b"003\n", "AGENTS_VERSION": b"004",
                     "CLI_VERSION": b"005\r\n"})

    plan = versions.plan_bulk(tmp_path, {"memory": "004", "agents": "010", "cli": "005"})

    assert {c.key: c.new for c in plan.changes} == {"memory": b"004\n", "agents": b"010"}
    assert [s.key for s in plan.skips] == ["cli"]


def test_plan_bulk_reports_every_problem(tmp_path: Path) -> None:
    """Every bad item is named in one error, so the user fixes them all at once."""
    write(tmp_path, {"MEMORY_VERSION": b"003\n", "AGENTS_VERSION": b"004\n"})

    with pytest.raises(ConfigError) as caught:
        versions.plan_bulk(tmp_path, [("memory", "004"), ("MEMORY", "005"), ("../x", "1"),
                                      ("ghost", "1"), ("agents", "junk"), ("agents", "1")])

    message = str(caught.value)
    assert "'memory' is set twice" in message
    assert "'../x'" in message
    assert "GHOST_VERSION" in message
    assert "'junk'" in message
    assert "'agents' is set twice" in message
    assert message.endswith("nothing was written")


def test_plan_bulk_needs_items(tmp_path: Path) -> None:
    """An empty bulk is a usage error, not a silent success."""
    with pytest.raises(ConfigError, match="--set"):
        versions.plan_bulk(tmp_path, [])


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("memory=004", ("memory", "004"), id="plain"),
    pytest.param("memory=a=b", ("memory", "a=b"), id="first-equals"),
])
def test_parse_setting(text: str, expected: tuple[str, str]) -> None:
    """``NAME=VERSION`` splits at the first ``=``."""
    assert versions.parse_setting(text) == expected


@pytest.mark.parametrize("text", [pytest.param("memory", id="no-equals"),
                                  pytest.param("memory=", id="no-version")])
def test_parse_setting_rejects(text: str) -> None:
    """A setting without a version is a usage error."""
    with pytest.raises(ConfigError, match="NAME=VERSION"):
        versions.parse_setting(text)


# -- check ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "spec", "status"), [
    pytest.param("004", ">=3", "compatible", id="serial-vs-int"),
    pytest.param("004", ">=002", "compatible", id="serial-vs-padded"),
    pytest.param("002", ">=002", "exact", id="serial-lower-bound"),
    pytest.param("2", ">=002", "exact", id="unpadded-lower-bound"),
    pytest.param("001", ">=002", "outdated", id="serial-below"),
    pytest.param("010", ">=9", "compatible", id="serial-not-string-order"),
    pytest.param("0.7.5", ">=0.7", "compatible", id="pep440"),
    pytest.param("0.7.0", ">=0.7", "exact", id="pep440-lower-bound"),
    pytest.param("0.7.5", "==0.7.5", "exact", id="pinned"),
    pytest.param("0.7.5", "~=0.7.5", "exact", id="compatible-release-floor"),
    pytest.param("0.7.9", "~=0.7.5", "compatible", id="compatible-release"),
    pytest.param("0.7.4", "~=0.7.5", "outdated", id="compatible-release-below"),
    pytest.param("0.8.0", "~=0.7.5", "incompatible", id="compatible-release-above"),
    pytest.param("0.9", ">=0.7,<0.8", "incompatible", id="above-upper-bound"),
    pytest.param("0.6", ">=0.7,<0.8", "outdated", id="below-range"),
    pytest.param("0.7.5", "!=0.7.5", "incompatible", id="excluded"),
    pytest.param("0.7.5", "==0.7.*", "compatible", id="wildcard"),
    pytest.param("0.6.1", "==0.7.*", "outdated", id="wildcard-below"),
    pytest.param("0.7.5-002", ">=0.7.5", "compatible", id="post-release-newer"),
    pytest.param("0.7.5-002", "==0.7.5", "incompatible", id="post-release-not-pinned"),
    pytest.param("0.8.0rc1", ">=0.7", "compatible", id="pre-release-present"),
    pytest.param("0.7.5", "", "compatible", id="no-specifier"),
])
def test_check_status(version: str, spec: str, status: str) -> None:
    """Each version/specifier pair gets the documented status."""
    (result,) = versions.check({"memory": spec}, {"memory": versions.parse(version)})

    assert result.status == status
    assert result.met is (status in {"exact", "compatible"})


def test_check_missing_subsystem() -> None:
    """A required subsystem without a version file is missing, and unmet."""
    (result,) = versions.check({"Memory": ">=1"}, {})

    assert (result.subsystem, result.version, result.status, result.met) == (
        "memory", None, "missing", False)


def test_check_bad_specifier_names_the_key() -> None:
    """An unparsable specifier is a ConfigError naming the requires key."""
    with pytest.raises(ConfigError, match=r"requires\.memory"):
        versions.check({"memory": ">=banana"}, {"memory": versions.parse("1")})


RELEASES = st.lists(st.integers(0, 30), min_size=1, max_size=3)


@given(base=RELEASES, newer=RELEASES,
       op=st.sampled_from([">=", ">", "==", "~=", "<", "<=", "!=", "==="]))
def test_a_newer_version_is_never_outdated(base: list[int], newer: list[int], op: str) -> None:
    """Whatever the specifier, a version above its bound is never called outdated."""
    base_text = ".".join(map(str, [*base, 0] if op == "~=" and len(base) == 1 else base))
    new_version = versions.parse(".".join(map(str, newer)) + ".1")
    if new_version.value <= versions.parse(base_text).value:
        return

    (result,) = versions.check({"memory": f"{op}{base_text}"}, {"memory": new_version})

    assert result.status != "outdated"


# -- round trip -------------------------------------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=6)
VERSION_TEXT = st.one_of(
    st.integers(0, 10**6).flatmap(lambda n: st.integers(1, 8).map(lambda w: str(n).zfill(w))),
    st.lists(st.integers(0, 99), min_size=1, max_size=4).map(lambda r: ".".join(map(str, r))
                                                                + ("" if len(r) > 1 else ".0")),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(lead=WHITESPACE, text=VERSION_TEXT, trail=WHITESPACE, bom=st.booleans())
def test_read_then_write_keeps_the_file_format(
        tmp_path_factory: pytest.TempPathFactory, lead: str, text: str, trail: str,
        bom: bool) -> None:
    """Reading a version file and writing a version back keeps every byte around it."""
    folder = tmp_path_factory.mktemp("v")
    data = (b"\xef\xbb\xbf" if bom else b"") + f"{lead}{text}{trail}".encode()
    write(folder, {"MEMORY_VERSION": data})

    vfile = versions.read(folder, "memory")
    plan = versions.plan_bump(folder, "memory")

    assert vfile.version.text == text
    assert vfile.render(vfile.version) == data
    (change,) = plan.changes
    assert isinstance(change, Change) and isinstance(change.new, bytes)
    nxt = versions.next_version(vfile.version).text
    assert change.new == data[:len(data) - len(text + trail)] + f"{nxt}{trail}".encode()


@given(parts=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
       pad=st.integers(0, 3))
def test_the_fast_path_agrees_with_packaging(parts: list[int], pad: int) -> None:
    """Serials and plain dotted releases skip importing packaging when parsed; each one
    still is exactly the version packaging reads (value compared lazily)."""
    from packaging.version import Version as Pep440

    from deploy.versions import parse

    text = ".".join(str(p) for p in parts)
    if len(parts) == 1:
        text = text.zfill(len(text) + pad)  # a serial like 004
    version = parse(text)

    assert version.text == text and version.serial == (len(parts) == 1)
    assert version.value == Pep440(str(int(text)) if version.serial else text)
