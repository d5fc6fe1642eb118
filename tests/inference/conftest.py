import pytest
from typer.testing import CliRunner

import arniqa.cli.export  # noqa: F401  (registers the verb)
from arniqa.cli import app


@pytest.fixture(scope="session")
def export_published(published):
    """``export_published(out, *options)``: ``arniqa export`` of the published-layout KADID-10k model to ``out``."""

    def export(out, *options):
        args = ["export", "-o", str(out), "--weights-dir", str(published[0]), "--regressor", "kadid10k", *options]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        return out

    return export
