"""An import-linter contract type the built-in ones lack: no import of an external package's
private submodules (`tensorflow_model_optimization.python...`).

import-linter's `forbidden` contract names external packages only as a whole: grimp records
`from tensorflow_model_optimization.python.core... import X` as an import of
`tensorflow_model_optimization`. This contract reads the import statement itself. .importlinter
registers it under `contract_types`; `lint-imports` run from the repository root imports it.
"""

import re

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

# The module an import statement names: `from a.b import c` -> a.b; `import a.b as c` -> a.b.
_IMPORTED = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))")


class ForbiddenSubmodulesContract(Contract):
    """`source_modules` (and their descendants) may not import `forbidden_modules` or below.

    Unlike `forbidden`, a forbidden module may be a submodule of an external package. Direct
    imports only: an external package's own imports are not in the graph.
    """

    type_name = "forbidden_submodules"

    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose):
        sources = tuple(self.source_modules)
        forbidden = tuple(self.forbidden_modules)
        roots = {name.split(".")[0] for name in forbidden}
        violations = []
        for importer in sorted(graph.modules):
            if not any(importer == s or importer.startswith(s + ".") for s in sources):
                continue
            for root in sorted(roots & graph.find_modules_directly_imported_by(importer)):
                for detail in graph.get_import_details(importer=importer, imported=root):
                    match = _IMPORTED.match(detail["line_contents"])
                    name = match and (match.group(1) or match.group(2))
                    if name and any(name == f or name.startswith(f + ".") for f in forbidden):
                        violations.append((importer, detail["line_number"], name))
        return ContractCheck(kept=not violations, warnings=None, metadata={"violations": violations})

    def render_broken_contract(self, check):
        for importer, line_number, name in check.metadata["violations"]:
            output.print_error(f"{importer} (l.{line_number}) imports {name}", bold=False)
            output.new_line()
