"""Tables that keep every cell whole at any width: side by side when they fit, one record per row when not.

Rich folds or cuts cells that do not fit the console (80 columns when piped), which turned model names into one
character per line. A :class:`WholeTable` measures its cells against the width it is given and, when the columns
do not fit, prints each row as its first cell on a line of its own followed by ``header value`` pairs packed into
lines, so no name, number or interval is ever cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

_GAP = 3  # between columns: one space of padding on each side and the (blank) column divider
_FIELD_GAP = "   "  # between packed `header value` fields of a record


def _text(cell: str | Text) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _width(cell: Text) -> int:
    return max((Text(line).cell_len for line in cell.plain.split("\n")), default=0)


class WholeTable:
    """Headers and rows of cells; the first column names the row. Rendered as a table or as records."""

    def __init__(self, headers: Sequence[str], *, right: Iterable[int] | None = None, caption: str | None = None):
        self.headers = list(headers)
        self.right = set(range(1, len(self.headers)) if right is None else right)
        self.rows: list[list[Text]] = []
        self.caption = caption

    def add_row(self, *cells: str | Text) -> None:
        row = [_text(c) for c in cells]
        self.rows.append(row + [Text("")] * (len(self.headers) - len(row)))

    def needed_width(self) -> int:
        widths = [max([len(h)] + [_width(r[i]) for r in self.rows]) for i, h in enumerate(self.headers)]
        return sum(widths) + _GAP * (len(widths) - 1)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.needed_width() <= options.max_width:
            yield self._as_table()
        else:
            yield from self._as_records(options.max_width)
        if self.caption:
            yield Text(self.caption, style="dim")

    def _as_table(self) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
        for i, header in enumerate(self.headers):
            table.add_column(header, justify="right" if i in self.right else "left", no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table

    def _as_records(self, width: int) -> RenderResult:
        for row in self.rows:
            name, *rest = row
            yield Text.assemble(Text(name.plain.split("\n")[0], style="bold"))
            for extra in name.plain.split("\n")[1:]:
                yield Text("  " + extra, style="dim")
            fields = [Text.assemble((f"{h} ", "dim"), cell) for h, cell in zip(self.headers[1:], rest, strict=True)
                      if cell.plain]
            line = Text("  ")
            for field in fields:
                if line.cell_len > 2 and line.cell_len + len(_FIELD_GAP) + field.cell_len > width:
                    yield line
                    line = Text("  ")
                if line.cell_len > 2:
                    line.append(_FIELD_GAP)
                line.append_text(field)
            if line.cell_len > 2:
                yield line
