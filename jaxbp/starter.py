"""``jaxbp exercises init DIR``: a fresh working copy of the exercises, anywhere.

Writes the exercise files (every function still a "not done yet" stub), the five
documents with the project's reading of them under ``DIR/documents/``, and a short
``README.md`` (English and Chinese) with the next three commands. Works from a wheel as
from a checkout (:mod:`jaxbp._resources` finds the files). It never overwrites a
learner's work: if a file it would write already exists with other contents, it writes
nothing and exits 2 (``--force`` to replace them).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

README = """\
# jaxbp exercises

Write the backward passes yourself, then let `jaxbp grade` check them against
`jax.grad` and the numbers the documents print. Each function's docstring says what to
derive and which document it comes from; write your code between `# BEGIN SOLUTION`
and `# END SOLUTION`. The documents are in `documents/`, with the project's reading of
them in `documents/reading.md`.

From this folder:

```bash
jaxbp notes 000                        # 1. document 000: printed vs computed
jaxbp grade sigmoid_backward --impl .  # 2. grade one exercise; no name: all of them
jaxbp demo mlp --impl .                # 3. once they pass: train with your backward
```

## 中文

亲手写出反向传播，再用 `jaxbp grade` 和 `jax.grad` 以及文档里印出的数字核对。每个函数的
文档字符串说明要推导什么、出自哪篇文档；把代码写在 `# BEGIN SOLUTION` 和
`# END SOLUTION` 之间。文档在 `documents/` 里，项目对它们的解读在 `documents/reading.md`。

在这个文件夹里运行：

```bash
jaxbp notes 000                        # 1. 文档 000：印出的数字与精确计算
jaxbp grade sigmoid_backward --impl .  # 2. 给一道题评分；不写题名则全部评分
jaxbp demo mlp --impl .                # 3. 全部通过后：用你的反向传播训练
```
"""


def add_arguments(parser):
    parser.add_argument("dir", metavar="DIR",
                        help="the folder to write (created if needed), e.g. my_exercises")
    parser.add_argument("--force", action="store_true",
                        help="replace files that already exist with other contents (a "
                             "learner's work is lost)")


def plan(root: Path) -> dict[Path, str]:
    """Every file a working copy at ``root`` holds, with its text."""
    from jaxbp import _resources

    files = {root / name: text for name, text in _resources.exercise_texts().items()}
    for path in _resources.document_files():
        files[root / "documents" / path.name] = path.read_text(encoding="utf-8")
    reading = _resources.reading_path()
    if reading.is_file():
        files[root / "documents" / reading.name] = reading.read_text(encoding="utf-8")
    files[root / "README.md"] = README
    return files


def conflicts(files: dict[Path, str]) -> list[Path]:
    """The files that exist with contents other than what :func:`plan` would write."""
    return [p for p, text in files.items()
            if p.exists() and (not p.is_file() or p.read_text(encoding="utf-8",
                                                               errors="replace") != text)]


def run(args) -> int:
    root = Path(args.dir)
    try:
        if root.exists() and not root.is_dir():
            raise ValueError(f"{args.dir} exists and is not a folder")
        files = plan(root)
        changed = conflicts(files)
        if changed and not args.force:
            names = ", ".join(str(p.relative_to(root)) for p in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            raise ValueError(f"{args.dir} already holds work that differs from a fresh "
                             f"copy ({names}{more}); nothing written (--force replaces "
                             f"those files)")
        written = 0
        for path, text in files.items():
            if path.is_file() and path.read_text(encoding="utf-8",
                                                 errors="replace") == text:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written += 1
    except (ValueError, OSError) as e:
        print(f"jaxbp exercises init: {e}", file=sys.stderr)
        return 2
    shown = str(root) if root.is_absolute() else os.path.relpath(root)
    exercises = sum(p.suffix == ".py" for p in files)
    print(f"wrote {written} file(s) to {shown}/ (a working copy: {exercises} exercise "
          f"files, README.md, documents/)" if written else
          f"{shown}/ is already a fresh copy")
    print(f"next: cd {shlex.quote(shown)} && jaxbp notes 000, then edit 01_activations.py "
          f"and run jaxbp grade sigmoid_backward --impl . (README.md has the commands)")
    return 0
