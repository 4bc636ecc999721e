"""Deployment settings that would undo the workspace isolation are flagged by `check --deploy`."""

from tests.test_boot import manage
from tests.test_settings import production_env


def test_host_networking_for_workspaces_fails_the_deployment_checklist(tmp_path):
    result = manage(production_env(tmp_path, BERTH_WORKSPACE_NETWORK="host"), "check", "--deploy",
                    "--fail-level", "WARNING", check=False)
    assert result.returncode != 0
    assert "berth.W001" in result.stderr + result.stdout
