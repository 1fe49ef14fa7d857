"""The render stage: one Jinja template per output file; the templates hold layout, not logic."""

from __future__ import annotations

from generator.format import format_python
from generator.model import Api
from generator.models import HEADER, generate_models


def render_project(api: Api, source: str) -> tuple[dict[str, str], frozenset[str]]:
    header = HEADER.format(source=source)
    pkg = api.package
    files: dict[str, str] = {}
    models = generate_models(api.schemas, f"{pkg}.wire.WireModel", header, source)
    files[f"{pkg}/models.py"] = format_python(models, f"{pkg}/models.py")
    files[f"{pkg}/__init__.py"] = f'{header}\n"""{api.title}"""\n'
    files[f"{pkg}/wire.py"] = format_python(
        f"{header}\nfrom pydantic import BaseModel, ConfigDict\n\n\nclass WireModel(BaseModel):\n"
        "    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)\n",
        "wire",
    )
    return files, frozenset()
