"""Result tables as CSV and markdown."""
import csv
import math
import os
from typing import Any, Sequence


def _fmt(row, key):
  """One decimal, except a nonzero float below 0.1 in size (e.g. an lr scale of 0.01), which keeps two
  significant digits instead of reading 0.0."""
  v = row[key]
  if not isinstance(v, float):
    return str(v)
  return f"{v:.2g}" if 0 < abs(v) < 0.1 else f"{v:.1f}"


def write_table(rows: Sequence[dict[str, Any]], path_stem: str, columns: Sequence[str]) -> str:
  """Writes `rows` (list of dicts) to `<path_stem>.csv` and `<path_stem>.md`; returns the markdown text.

  Columns named `*_mean` are rendered together with their `*_ci95` partner as `mean ± ci` in markdown.
  """
  os.makedirs(os.path.dirname(path_stem) or ".", exist_ok=True)
  with open(path_stem + ".csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else columns)
    writer.writeheader()
    writer.writerows(rows)
  header = [c[:-5] if c.endswith("_mean") else c for c in columns]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
  for row in rows:
    cells = []
    for c in columns:
      if c.endswith("_mean"):
        ci = row.get(c[:-5] + "_ci95", float("nan"))
        if math.isnan(row[c]):
          cells.append("")
        else:
          cells.append(f"{row[c]:.1f}" + ("" if math.isnan(ci) else f" ± {ci:.1f}"))
      else:
        cells.append(_fmt(row, c))
    lines.append("| " + " | ".join(cells) + " |")
  text = "\n".join(lines) + "\n"
  with open(path_stem + ".md", "w") as f:
    f.write(text)
  return text
