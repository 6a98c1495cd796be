"""Static checks on the source (trusted side, no torch): syntax, then the model contract.

The contract (docs/design.md): module-level `supported_hyperparameters()`, and a class `Net`
with `__init__(self, in_shape, out_shape, prm, device)`, `forward`, `train_setup`,
`learn`. Methods may come from other classes defined in the same file (`class Net(Base)`).
"""

import ast

from archloop.runner.failures import CandidateFailure, FailureClass

REQUIRED_METHODS = ("forward", "train_setup", "learn")
INIT_PARAMS = ("in_shape", "out_shape", "prm", "device")


def parse(code: str) -> ast.Module:
    try:
        return ast.parse(code, filename="candidate.py")
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        raise CandidateFailure(FailureClass.SYNTAX, f"{where}: {error.msg}", "syntax") from None
    except ValueError as error:  # e.g. null bytes in the source
        raise CandidateFailure(FailureClass.SYNTAX, str(error), "syntax") from None


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> dict[str, ast.FunctionDef]:
    """Methods of cls including those inherited from classes defined in the same file."""
    found: dict[str, ast.FunctionDef] = {}
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else None
        if name in classes and name not in seen:
            found.update(_methods(classes[name], classes, seen | {name}))
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
    return found


def _init_accepts_contract(init: ast.FunctionDef) -> bool:
    args = init.args
    if args.vararg is not None:
        return True
    positional = [a.arg for a in (*args.posonlyargs, *args.args)][1:]  # drop self
    if len(positional) >= len(INIT_PARAMS):
        return True
    named = set(positional) | {a.arg for a in args.kwonlyargs}
    return all(name in named for name in INIT_PARAMS) or args.kwarg is not None


def _is_main_guard(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (never true for the candidate, which is not run as a script)."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def example_usage(tree: ast.Module) -> ast.stmt | None:
    """A module-level statement that builds a Net (`net = Net(...)`, `print(Net(...))`): example
    code small models append, which runs at import with made-up arguments."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) or _is_main_guard(node):
            continue
        if any(isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "Net" for sub in ast.walk(node)):
            return node
    return None


def check(tree: ast.Module) -> None:
    fail = lambda message: CandidateFailure(FailureClass.CONTRACT, message, "contract")  # noqa: E731
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "supported_hyperparameters" not in functions:
        raise fail("no module-level function supported_hyperparameters()")
    classes = _classes(tree)
    if "Net" not in classes:
        raise fail("no class Net defined at module level")
    methods = _methods(classes["Net"], classes, {"Net"})
    if "__init__" not in methods:
        raise fail("class Net has no __init__(self, in_shape, out_shape, prm, device)")
    if not _init_accepts_contract(methods["__init__"]):
        raise fail("Net.__init__ must accept (in_shape, out_shape, prm, device)")
    missing = [name for name in REQUIRED_METHODS if name not in methods]
    if missing:
        raise fail(f"class Net lacks method(s): {', '.join(missing)}")
    usage = example_usage(tree)
    if usage is not None:
        text = ast.unparse(usage).splitlines()[0][:120]
        raise fail(f"module-level example code runs at import: delete it (line {usage.lineno}: {text})")


def check_size(code: str, limit_bytes: int) -> None:
    """A bound on what a program can carry: a table of public test images (or of hashes of
    them) and their public labels takes room (docs/sandbox.md)."""
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > limit_bytes:
        raise CandidateFailure(FailureClass.CONTRACT, f"the program is {size} bytes, over the limit of {limit_bytes} "
                               "(contract.maxCodeBytes): embed no data tables", "contract")


def check_source(code: str) -> ast.Module:
    tree = parse(code)
    check(tree)
    return tree


def check_hyperparameters(value: object, allowed: set[str]) -> set[str]:
    """supported_hyperparameters() must name only keys of the prm archloop passes."""
    if isinstance(value, dict):
        value = list(value.keys())
    if not isinstance(value, (set, frozenset, list, tuple)):
        raise CandidateFailure(
            FailureClass.CONTRACT,
            f"supported_hyperparameters() returned {type(value).__name__}, expected a set of names",
            "contract",
        )
    names = set()
    for item in value:
        if not isinstance(item, str):
            raise CandidateFailure(FailureClass.CONTRACT, f"supported_hyperparameters() item {item!r} is not a str", "contract")
        names.add(item)
    unknown = sorted(names - allowed)
    if unknown:
        raise CandidateFailure(
            FailureClass.CONTRACT,
            f"supported_hyperparameters() names {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            "contract",
        )
    return names
