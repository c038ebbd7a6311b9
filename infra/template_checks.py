"""Offline checks of template.yaml: SAM translation, cfn-lint on both forms, and checkov."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
TRANSLATED = ROOT / "build" / "template.cfn.json"

# The translation never reaches AWS: a fixed region stands in for the deploy region.
REGION = "us-east-1"

# Local artifact properties that `sam package` would upload; the translator wants S3 locations instead.
ARTIFACT_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
PLACEHOLDER_BUCKET = "template-checks-artifacts"

# cfn-lint has no `python -m` entry point; this is what its console script runs.
CFN_LINT = "import sys; from cfnlint.runner import main; sys.exit(main())"


class CheckFailed(Exception):
    """A check found a problem; its message says what."""


def with_placeholder_artifacts(template: dict[str, Any]) -> dict[str, Any]:
    """Replace local artifact paths by placeholder S3 locations, as `sam package` would."""
    for resource in template.get("Resources", {}).values():
        prop = ARTIFACT_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        local_path = properties.get(prop) if prop else None
        if isinstance(local_path, str) and not local_path.startswith("s3://"):
            properties[prop] = {"Bucket": PLACEHOLDER_BUCKET, "Key": local_path}
    return template


def translate(template_path: Path, output_path: Path) -> None:
    """Translate the SAM template to CloudFormation in-process, with no AWS credentials or network."""
    import yaml
    from boto3.session import Session
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    output_path.unlink(missing_ok=True)  # never lint a stale translation
    try:
        sam_template = with_placeholder_artifacts(yaml_parse(template_path.read_text()))
    except yaml.YAMLError as error:
        raise CheckFailed(f"not valid YAML: {error}") from error
    # A session only names the region (and so the partition); the translator makes no AWS call with it.
    translator = Translator(None, Parser(), boto_session=Session(region_name=REGION))
    try:
        # AWS managed policy names resolve from the translator's bundled map; nothing asks IAM.
        cfn_template = translator.translate(sam_template, parameter_values={}, get_managed_policy_map=dict)
    except InvalidDocumentException as error:
        causes = "\n".join(f"  - {cause.message}" for cause in error.causes)
        raise CheckFailed(f"{error.message}\n{causes}") from error
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(cfn_template, indent=2, sort_keys=True) + "\n")
    print(f"wrote {output_path.relative_to(ROOT)}")


def run_tool(args: list[str]) -> None:
    """Run a linter with this interpreter; any non-zero exit is a finding."""
    completed = subprocess.run([sys.executable, *args], cwd=ROOT, check=False)
    if completed.returncode != 0:
        raise CheckFailed(f"exit code {completed.returncode}")


def cfn_lint(path: Path) -> None:
    """cfn-lint one template; warnings and informational findings fail too."""
    run_tool(["-c", CFN_LINT, str(path.relative_to(ROOT))])


def checkov(path: Path) -> None:
    """checkov the SAM template; skips must sit in the resource as `# checkov:skip=ID:reason`."""
    run_tool(
        [
            "-W",
            "ignore::SyntaxWarning",
            "-m",
            "checkov.main",
            "--file",
            str(path.relative_to(ROOT)),
            "--framework",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-download",
        ]
    )


def main() -> int:
    """Run every check, print each one's outcome and runtime, and return non-zero if any failed."""
    steps: list[tuple[str, Callable[[], None]]] = [
        ("samtranslator: template.yaml -> build/template.cfn.json", lambda: translate(TEMPLATE, TRANSLATED)),
        ("cfn-lint template.yaml", lambda: cfn_lint(TEMPLATE)),
        ("cfn-lint build/template.cfn.json", lambda: cfn_lint(TRANSLATED)),
        ("checkov template.yaml", lambda: checkov(TEMPLATE)),
    ]
    failed: list[str] = []
    for name, step in steps:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            step()
        except (CheckFailed, FileNotFoundError) as error:
            failed.append(name)
            print(f"FAILED: {name}: {error}", flush=True)
        print(f"-- {name}: {time.monotonic() - started:.1f}s", flush=True)
    if failed:
        print("template checks failed:\n" + "\n".join(f"  - {name}" for name in failed))
        return 1
    print("template checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
