"""The stack with the optional edge switched on (template.yaml's Edge), for the tests that lint, scan and check it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGE_ON = {
    "Edge": "true",
    "ApiOriginDomainName": "api-origin.shop.example.com",
    "ApiOriginCertificateArn": "arn:aws:acm:eu-central-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
    "EdgeDomainName": "shop.example.com",
    "EdgeCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
}


def edge_on_copy(directory: Path) -> Path:
    """template.yaml with the edge switched on by its defaults (linters and scanners see one parameter set: the
    defaults), in `directory`, next to links to everything it names (code, state machine, the web ACL's template)."""
    data = (ROOT / "template.yaml").read_text()
    for name, value in EDGE_ON.items():
        marker = f"\n  {name}:\n"
        start = data.index(marker)
        default = data.index("    Default:", start)
        end = data.index("\n", default)
        data = data[:default] + f'    Default: "{value}"' + data[end:]
    for entry in ROOT.iterdir():
        if entry.name not in {"template.yaml", ".git", ".venv", ".venv-checkov", ".aws-sam"}:
            (directory / entry.name).symlink_to(entry)
    (directory / "template.yaml").write_text(data)
    return directory
