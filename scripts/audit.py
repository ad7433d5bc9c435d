"""The dependency audit: pip-audit over the installed packages, read from its JSON report.

Exit 1 when a package has a known vulnerability. When the advisory service cannot be reached (this project's
machines reach only the package indexes, whose JSON API carries the advisories on pypi.org), pip-audit skips
every package and says "No known vulnerabilities found": that is reported as not audited, with a warning, and
does not fail the run, since it says nothing about the packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "audit.json"
        done = subprocess.run([sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable",
                               "--format", "json", "--output", str(report_path)], capture_output=True, text=True,
                              timeout=900)
        if not report_path.exists():
            print(f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}", file=sys.stderr)
            return 2
        report = json.loads(report_path.read_text())
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = len(dependencies) - len(skipped)
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
            print(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    print(f"dependency audit: {audited} of {len(dependencies)} packages audited, {len(vulnerable)} vulnerable")
    if skipped and not audited:
        print("warning: the advisory service could not be reached, so nothing was audited "
              f"({skipped[0]['skip_reason']}); run scripts/audit.py where pypi.org's JSON API is reachable",
              file=sys.stderr)
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
