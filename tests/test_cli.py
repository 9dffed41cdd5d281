"""The `pim` command on the embedded default, as a newcomer runs it."""

from pathlib import Path

from tests.cli_helper import pim


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    created = pim(
        tmp_path, "keys", "create", "--account", "ACME", "--name", "ERP Sync Key",
        "--scopes", "ext:products:read,ext:products:write",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    plain = created.stdout.strip().splitlines()[-1]
    assert plain.startswith("pm_live_") and len(plain) > 40

    listed = pim(tmp_path, "keys", "list")
    assert "ERP Sync Key" in listed.stdout and "ACME" in listed.stdout
    assert plain not in listed.stdout  # the secret is never shown again

    key_id = listed.stdout.split()[0]
    revoked = pim(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "révoquée" in pim(tmp_path, "keys", "list").stdout
    again = pim(tmp_path, "keys", "revoke", key_id)
    assert again.returncode == 1 and "introuvable" in again.stderr


def test_keys_list_loads_no_platform_client_nor_file_transfer_library(tmp_path: Path) -> None:
    pim(tmp_path, "keys", "create", "--account", "ACME", "--name", "ERP")
    listed = pim(tmp_path, "keys", "list", python=["-X", "importtime"])
    assert listed.returncode == 0 and "ERP" in listed.stdout
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in listed.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"connectors", "asyncssh", "aioftp", "polars", "fastapi", "strawberry"}
    assert "resolvers.keys" in loaded and {name.split(".")[0] for name in loaded} & heavy == set()


def test_keys_rotate_prints_a_new_key_and_lists_the_old_one_until_its_grace_ends(
    tmp_path: Path,
) -> None:
    created = pim(tmp_path, "keys", "create", "--account", "ACME", "--name", "ERP")
    prefix = created.stdout.strip().splitlines()[-1][:14]
    rotated = pim(tmp_path, "keys", "rotate", prefix, "--grace-hours", "0")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("pm_live_") and not new.startswith(prefix)
    listed = pim(tmp_path, "keys", "list").stdout.splitlines()
    states = sorted(line.split("[")[1].split("]")[0] for line in listed if "ERP" in line)
    assert states == ["active", "révoquée"]


def test_unknown_scope_is_refused(tmp_path: Path) -> None:
    result = pim(tmp_path, "keys", "create", "--account", "A", "--name", "k", "--scopes", "root")
    assert result.returncode == 1 and "portée inconnue" in result.stderr


def test_demo_loads_a_catalog_and_is_idempotent(tmp_path: Path) -> None:
    first = pim(tmp_path, "demo", "--products", "300")
    assert first.returncode == 0, first.stderr
    assert "300 produits créés" in first.stdout
    second = pim(tmp_path, "demo", "--products", "300")
    assert "0 produits créés, 300 mis à jour" in second.stdout
