"""LoRA adapters served on one base model through PEFT's multi-adapter support, with the
semantics of vLLM's runtime adapter API (names unique, unknown names are 404)."""

import contextlib
import re
from pathlib import Path

from archloop.llm.openai_errors import bad_request, not_found

# A served name is also a directory name under --adapters-dir, so it must be one plain component.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$")


def check_adapter_dir(path: Path) -> None:
    if not (path / "adapter_config.json").is_file():
        raise bad_request(f"no LoRA adapter at {path} (adapter_config.json missing)", "lora_path")


class AdapterSet:
    """The model that requests run on: the bare base model until the first adapter is loaded,
    then a PeftModel holding every loaded adapter. Callers serialise access (one lock)."""

    def __init__(self, base_model, base_name: str, adapters_dir: Path | None):
        self.model = base_model
        self.base_name = base_name
        self.adapters_dir = adapters_dir
        self.paths: dict[str, Path] = {}

    def resolve_path(self, lora_path: str) -> Path:
        path = Path(lora_path)
        if not path.is_absolute() and self.adapters_dir is not None:
            path = self.adapters_dir / path
        return path.resolve()

    def load(self, name: str, lora_path: str) -> Path:
        if not NAME_PATTERN.match(name):
            raise bad_request(f"invalid adapter name {name!r}", "lora_name")
        if name == self.base_name or name in self.paths:
            raise bad_request(f"The lora adapter '{name}' has already been loaded.", "lora_name")
        path = self.resolve_path(lora_path)
        check_adapter_dir(path)
        from peft import PeftModel  # imported on first use: keeps server start-up fast

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        self.model.eval()
        self.paths[name] = path
        return path

    def unload(self, name: str) -> None:
        if name not in self.paths:
            raise not_found(f"The lora adapter '{name}' cannot be found.")
        del self.paths[name]
        if self.paths:
            self.model.delete_adapter(name)
        else:
            self.model = self.model.unload()  # back to the bare base model, LoRA layers removed

    def knows(self, name: str) -> bool:
        """Whether `name` is servable, loading it from --adapters-dir on first use the way
        vLLM's filesystem LoRA resolver does (so adapters survive a server restart)."""
        if name == self.base_name or name in self.paths:
            return True
        if self.adapters_dir is None or not NAME_PATTERN.match(name):
            return False
        candidate = self.adapters_dir / name
        if not (candidate / "adapter_config.json").is_file():
            return False
        self.load(name, str(candidate))
        return True

    @contextlib.contextmanager
    def active(self, name: str):
        """Run the block on adapter `name`, or on the base model when `name` is the base."""
        if not self.paths:
            yield self.model
        elif name == self.base_name:
            with self.model.disable_adapter():
                yield self.model
        else:
            self.model.set_adapter(name)
            yield self.model
