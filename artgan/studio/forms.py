"""A task's declared click options as studio widgets, and the widgets' values checked back.

The studio offers an option only if its value cannot name a server file: flags, numbers
and choices. A free-text option (a path, a device) stays a CLI matter. Every value that
comes back from the browser is converted and range-checked by the option's own click type
on the server, exactly as the CLI would, so the page cannot pass what the CLI refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click

from artgan.errors import ArtganError

OFFERED_TYPES = (click.types.BoolParamType, click.types.IntParamType,
                 click.types.FloatParamType, click.Choice)
LEFT_TO_THE_CLI = ("device",)  # the studio's own --device decides where networks run


@dataclass(frozen=True)
class Field:
    """One option as the studio shows it: ``name`` is the keyword it is passed as."""

    option: click.Option

    @property
    def name(self) -> str:
        assert self.option.name is not None
        return self.option.name

    @property
    def default(self) -> Any:
        """The option's default as the CLI would use it (None when it has none)."""
        command = click.Command("studio", params=[self.option])
        with command.make_context("studio", [], resilient_parsing=True) as ctx:
            return ctx.params.get(self.name)

    @property
    def label(self) -> str:
        return max(self.option.opts, key=len).lstrip("-")

    def widget(self) -> Any:
        """A gradio input showing the option's default, help and limits."""
        import gradio as gr

        option, kind = self.option, self.option.type
        info = option.help
        if option.is_flag:
            return gr.Checkbox(value=bool(self.default), label=self.label, info=info)
        if isinstance(kind, click.Choice):
            return gr.Dropdown(choices=list(kind.choices), value=self.default,
                               label=self.label, info=info)
        if self.default is None:  # gradio's number box cannot be empty: "not given" is text
            return gr.Textbox(value="", placeholder="not set", label=self.label, info=info,
                              max_length=32)
        low, high = _bounds(kind)
        precision = 0 if isinstance(kind, click.types.IntParamType) else None
        return gr.Number(value=self.default, label=self.label, info=info, minimum=low,
                         maximum=high, precision=precision, step=1 if precision == 0 else 0.01)

    def check(self, value: Any) -> Any:
        """The browser's value as the CLI would take it; one line naming the option if not."""
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if self.option.required:
                raise ArtganError(f"--{self.label} is required")
            return self.default
        if isinstance(self.option.type, click.types.IntParamType) and isinstance(value, float):
            if not value.is_integer():
                raise ArtganError(f"--{self.label}: {value} is not a whole number")
            value = int(value)
        try:
            return self.option.type.convert(value, self.option, None)
        except click.BadParameter as exc:
            raise ArtganError(f"--{self.label}: {exc.message}") from None


def fields(options: Iterable[click.Parameter], keywords: Iterable[str]) -> list[Field]:
    """The options among ``options`` the studio can offer whose names are in ``keywords``
    (what the task's ``load`` or its sampler accepts), in the task's own order."""
    wanted = set(keywords) - set(LEFT_TO_THE_CLI)
    return [Field(option) for option in options
            if isinstance(option, click.Option) and option.name in wanted
            and not option.multiple and offered(option)]


def offered(option: click.Option) -> bool:
    """Whether the studio can show ``option``: a flag, a number or a choice."""
    return option.is_flag or isinstance(option.type, OFFERED_TYPES)


def checked(form: list[Field], values: Iterable[Any]) -> dict[str, Any]:
    """Keyword arguments from the widgets' values, each checked by its option."""
    return {field.name: field.check(value) for field, value in zip(form, values, strict=True)}


def _bounds(kind: click.ParamType) -> tuple[float | None, float | None]:
    """An ``IntRange``'s or ``FloatRange``'s limits (None: open)."""
    return getattr(kind, "min", None), getattr(kind, "max", None)
