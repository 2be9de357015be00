"""A small, safe evaluator for Hiplot's conditional ui.json attributes.

Hiplot's front end evaluates ``if_func``, ``items_func``, ``class_func`` and ``max_func`` as
JavaScript with ``this`` bound to the form. hisci never runs that JavaScript (nor Python
``eval``): this module parses the subset real plugins use and interprets it over plain data.

Grammar (precedence from low to high)::

    expr     := ternary
    ternary  := or ( "?" expr ":" expr )?
    or       := and ( "||" and )*
    and      := equality ( "&&" equality )*
    equality := relation ( ("===" | "!==" | "==" | "!=") relation )*
    relation := additive ( ("<" | "<=" | ">" | ">=") additive )*
    additive := multiplicative ( ("+" | "-") multiplicative )*
    multiplicative := unary ( ("*" | "/" | "%") unary )*
    unary    := ("!" | "-" | "+") unary | postfix
    postfix  := primary ( "." name | "[" expr "]" | "(" args ")" )*
    primary  := number | string | true | false | null | undefined | this | name
              | "[" (expr ("," expr)*)? "]" | "(" expr ")"

Values follow JavaScript's rules where they matter to these expressions: truthiness
(``""``, ``0``, ``null``, ``undefined``, ``false`` are falsy; ``[]`` is truthy), strict
equality, ``.length``, ``indexOf``/``includes`` on strings and arrays. A missing property
reads as ``undefined`` (``None``) instead of throwing.

The context is the object ``this`` stands for: a dict such as::

    {"params": {"textarea": {...}, "config": {"data", "dataArg", "general", "extra"}},
     "tableHeader": {"datTable": ["gene", "logFC"]},
     "selectCols": callable, "getDataAreaFactors": callable, "retriveUniqueLine": callable}

:func:`hisci.form.form_context` builds one from request params, table texts and input
file texts, with the helpers named in the Hiplot research.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import Problem

__all__ = [
    "ExpressionError",
    "check_expression",
    "check_ui_expressions",
    "evaluate",
    "to_number",
    "truthy",
    "widgets",
]

#: Attributes of a widget that hold expressions.
EXPRESSION_KEYS = ("if_func", "items_func", "class_func", "max_func")
MAX_LENGTH = 2000


class ExpressionError(ValueError):
    """An expression that cannot be parsed (or uses something not supported)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class _Undefined:
    """JavaScript's ``undefined`` (distinct from ``null``, which is ``None``)."""

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()

# --------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>===|!==|==|!=|<=|>=|&&|\|\||[!<>?:.,()\[\]+\-*/%])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # num, str, name, op, end
    value: Any
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} at position {pos}", pos)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "num":
            tokens.append(_Tok("num", float(raw) if any(c in raw for c in ".eE") else int(raw), pos))
        elif kind == "str":
            body = raw[1:-1]
            tokens.append(_Tok("str", re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body), pos))
        elif kind in ("name", "op"):
            tokens.append(_Tok(kind, raw, pos))
        pos = match.end()
    tokens.append(_Tok("end", None, len(text)))
    return tokens


# --------------------------------------------------------------------------- parser
# The AST is tuples: ("lit", v), ("this",), ("name", n), ("array", [..]), ("member", obj, key),
# ("index", obj, expr), ("call", callee, [args]), ("unary", op, e), ("binary", op, a, b),
# ("logic", op, a, b), ("cond", test, a, b).

_KEYWORDS = {"true": True, "false": False, "null": None, "undefined": UNDEFINED}
_FORBIDDEN = {"function", "new", "delete", "typeof", "void", "var", "let", "const", "return",
              "eval", "window", "document", "constructor", "__proto__", "prototype"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def take(self, value: str | None = None, kind: str | None = None) -> _Tok:
        tok = self.tok
        if (value is not None and tok.value != value) or (kind is not None and tok.kind != kind) \
                or (value is not None and tok.kind not in ("op", "name")):
            want = repr(value) if value is not None else (kind or "token")
            got = "the end" if tok.kind == "end" else repr(tok.value)
            raise ExpressionError(f"expected {want} at position {tok.pos}, found {got}", tok.pos)
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in values

    def parse(self) -> tuple:
        if not self.text.strip():
            raise ExpressionError("the expression is empty", 0)
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self.tok.value!r} at position {self.tok.pos}", self.tok.pos)
        return node

    def expr(self) -> tuple:
        test = self.logic_or()
        if self.at("?"):
            self.take("?")
            yes = self.expr()
            self.take(":")
            no = self.expr()
            return ("cond", test, yes, no)
        return test

    def logic_or(self) -> tuple:
        node = self.logic_and()
        while self.at("||"):
            self.take()
            node = ("logic", "||", node, self.logic_and())
        return node

    def logic_and(self) -> tuple:
        node = self.equality()
        while self.at("&&"):
            self.take()
            node = ("logic", "&&", node, self.equality())
        return node

    def _binary(self, ops: tuple[str, ...], lower: Callable[[], tuple]) -> tuple:
        node = lower()
        while self.at(*ops):
            op = self.take().value
            node = ("binary", op, node, lower())
        return node

    def equality(self) -> tuple:
        return self._binary(("===", "!==", "==", "!="), self.relation)

    def relation(self) -> tuple:
        return self._binary(("<", "<=", ">", ">="), self.additive)

    def additive(self) -> tuple:
        return self._binary(("+", "-"), self.multiplicative)

    def multiplicative(self) -> tuple:
        return self._binary(("*", "/", "%"), self.unary)

    def unary(self) -> tuple:
        if self.at("!", "-", "+"):
            op = self.take().value
            return ("unary", op, self.unary())
        return self.postfix()

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.at("."):
                self.take(".")
                name = self.take(kind="name").value
                if name in _FORBIDDEN:
                    raise ExpressionError(f"'{name}' is not allowed", self.tokens[self.i - 1].pos)
                node = ("member", node, name)
            elif self.at("["):
                self.take("[")
                key = self.expr()
                self.take("]")
                node = ("index", node, key)
            elif self.at("("):
                self.take("(")
                args = []
                if not self.at(")"):
                    args.append(self.expr())
                    while self.at(","):
                        self.take(",")
                        args.append(self.expr())
                self.take(")")
                if node[0] not in ("member", "name"):
                    raise ExpressionError("only named functions and methods can be called", self.tok.pos)
                node = ("call", node, args)
            else:
                return node

    def primary(self) -> tuple:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.i += 1
            return ("lit", tok.value)
        if tok.kind == "name":
            self.i += 1
            if tok.value in _KEYWORDS:
                return ("lit", _KEYWORDS[tok.value])
            if tok.value == "this":
                return ("this",)
            if tok.value in _FORBIDDEN:
                raise ExpressionError(f"'{tok.value}' is not allowed", tok.pos)
            return ("name", tok.value)
        if self.at("["):
            self.take("[")
            items = []
            if not self.at("]"):
                items.append(self.expr())
                while self.at(","):
                    self.take(",")
                    if self.at("]"):
                        break
                    items.append(self.expr())
            self.take("]")
            return ("array", items)
        if self.at("("):
            self.take("(")
            node = self.expr()
            self.take(")")
            return node
        got = "the end" if tok.kind == "end" else repr(tok.value)
        raise ExpressionError(f"unexpected {got} at position {tok.pos}", tok.pos)


@lru_cache(maxsize=1024)
def parse(expression: str) -> tuple:
    """Parse an expression into a small AST; raise ExpressionError when it cannot."""
    if not isinstance(expression, str):
        raise ExpressionError(f"an expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    return _Parser(expression).parse()


# --------------------------------------------------------------------------- interpreter

def truthy(value: Any) -> bool:
    """JavaScript truthiness: ``[]`` and ``{}`` are true; ``""``, ``0``, NaN, null are false."""
    if value is None or value is UNDEFINED or value is False:
        return False
    if isinstance(value, (int, float)):
        return not (value == 0 or (isinstance(value, float) and math.isnan(value)))
    if isinstance(value, str):
        return value != ""
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _strict_equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if a is UNDEFINED or b is UNDEFINED:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, dict)):
        return a is b
    return a == b


def to_number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if _is_number(value):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return math.nan
    return math.nan


def _loose_equal(a: Any, b: Any) -> bool:
    nullish = (None, UNDEFINED)
    if a in nullish or b in nullish:
        return a in nullish and b in nullish
    if type(a) is type(b) or (_is_number(a) and _is_number(b)):
        return _strict_equal(a, b)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return _to_string(a) == _to_string(b)
    return to_number(a) == to_number(b)


def _to_string(value: Any) -> str:
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if v in (None, UNDEFINED) else _to_string(v) for v in value)
    return str(value)


def _member(obj: Any, key: Any) -> Any:
    if obj is None or obj is UNDEFINED:
        return UNDEFINED  # JavaScript would throw; a hidden field is the forgiving answer
    if key == "length" and isinstance(obj, (str, list, tuple)):
        return len(obj)
    if isinstance(obj, Mapping):
        key = _to_string(key) if not isinstance(key, str) else key
        return obj.get(key, UNDEFINED)
    if isinstance(obj, (list, tuple, str)):
        if _is_number(key) and float(key).is_integer():
            index = int(key)
            return obj[index] if 0 <= index < len(obj) else UNDEFINED
        if isinstance(key, str) and key.isdigit():
            return _member(obj, int(key))
        return UNDEFINED
    return UNDEFINED


def _method(obj: Any, name: str, args: list[Any]) -> Any:
    """The few string and array methods these expressions use."""
    if isinstance(obj, (list, tuple)):
        if name == "indexOf":
            target = args[0] if args else UNDEFINED
            return next((i for i, v in enumerate(obj) if _strict_equal(v, target)), -1)
        if name == "includes":
            target = args[0] if args else UNDEFINED
            return any(_strict_equal(v, target) for v in obj)
        if name == "join":
            sep = args[0] if args else ","
            return str(sep).join(_to_string(v) for v in obj)
        if name == "slice":
            start = int(to_number(args[0])) if args else 0
            end = int(to_number(args[1])) if len(args) > 1 else None
            return list(obj[start:end])
    if isinstance(obj, str):
        if name == "indexOf":
            return obj.find(_to_string(args[0]) if args else "undefined")
        if name == "includes":
            return (_to_string(args[0]) if args else "undefined") in obj
        if name == "startsWith":
            return obj.startswith(_to_string(args[0]) if args else "undefined")
        if name == "endsWith":
            return obj.endswith(_to_string(args[0]) if args else "undefined")
        if name in ("toLowerCase", "toUpperCase", "trim"):
            return {"toLowerCase": obj.lower, "toUpperCase": obj.upper, "trim": obj.strip}[name]()
        if name == "split":
            return obj.split(_to_string(args[0])) if args else [obj]
    if isinstance(obj, Mapping):
        func = obj.get(name)
        if callable(func):
            return func(*args)
    raise ExpressionError(f"method '{name}' is not supported on {_type_name(obj)}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x, y = a, b
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and (isinstance(a, str) or isinstance(b, str)
                      or isinstance(a, list) or isinstance(b, list)):
        return _to_string(a) + _to_string(b)
    x, y = to_number(a), to_number(b)
    if op == "+":
        result = x + y
    elif op == "-":
        result = x - y
    elif op == "*":
        result = x * y
    elif op == "/":
        result = (math.copysign(math.inf, x) if x else math.nan) if y == 0 else x / y
    else:
        result = math.nan if y == 0 else math.fmod(x, y)
    return int(result) if isinstance(result, float) and result.is_integer() and abs(result) < 2**53 else result


def _eval(node: tuple, this: Any) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "this":
        return this
    if kind == "name":
        # A bare name is read from the context, the way Hiplot's `if` names a sibling switch.
        return _member(this, node[1])
    if kind == "array":
        return [_eval(item, this) for item in node[1]]
    if kind == "member":
        return _member(_eval(node[1], this), node[2])
    if kind == "index":
        return _member(_eval(node[1], this), _eval(node[2], this))
    if kind == "call":
        callee = node[1]
        args = [_eval(a, this) for a in node[2]]
        if callee[0] == "name":
            func = _member(this, callee[1])
            if callable(func):
                return func(*args)
            raise ExpressionError(f"unknown function '{callee[1]}'")
        obj = _eval(callee[1], this)
        return _method(obj, callee[2], args)
    if kind == "unary":
        value = _eval(node[2], this)
        if node[1] == "!":
            return not truthy(value)
        number = to_number(value)
        return -number if node[1] == "-" else number
    if kind == "logic":
        left = _eval(node[2], this)
        if node[1] == "&&":
            return _eval(node[3], this) if truthy(left) else left
        return left if truthy(left) else _eval(node[3], this)
    if kind == "binary":
        op, a, b = node[1], _eval(node[2], this), _eval(node[3], this)
        if op == "===":
            return _strict_equal(a, b)
        if op == "!==":
            return not _strict_equal(a, b)
        if op == "==":
            return _loose_equal(a, b)
        if op == "!=":
            return not _loose_equal(a, b)
        if op in ("<", "<=", ">", ">="):
            return _compare(op, a, b)
        return _arith(op, a, b)
    if kind == "cond":
        return _eval(node[2], this) if truthy(_eval(node[1], this)) else _eval(node[3], this)
    raise ExpressionError(f"unknown node {kind}")  # pragma: no cover


def evaluate(expression: str, context: Any) -> Any:
    """Evaluate ``expression`` with ``this`` bound to ``context``.

    Raises :class:`ExpressionError` when the expression cannot be parsed or calls something
    that is not provided. ``undefined`` comes back as ``None``.
    """
    try:
        value = _eval(parse(expression), context)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise ExpressionError(f"cannot evaluate: {exc}") from None
    return None if value is UNDEFINED else value


def check_expression(expression: Any, *, pointer: str = "", file: str = "") -> Problem | None:
    """None when ``expression`` parses; otherwise a Problem (at ``pointer`` in ``file``)."""
    try:
        parse(expression)
    except ExpressionError as exc:
        return Problem(f"cannot parse expression: {exc}", pointer=pointer, file=file,
                       given=expression if isinstance(expression, str) else repr(expression),
                       hint="hisci evaluates a JavaScript subset: this.params..., "
                            "this.tableHeader[...], ===, !==, &&, ||, !, ?:, indexOf, .length, "
                            "[...] and the helpers selectCols, getDataAreaFactors, retriveUniqueLine")
    except RecursionError:
        return Problem("cannot parse expression: it is nested too deeply", pointer=pointer, file=file)
    return None


def widgets(ui: Any) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(section, key, raw widget dict) for a UiSpec or a raw ui.json dict."""
    for section in ("data", "extra"):
        widgets = getattr(ui, section, None) if not isinstance(ui, Mapping) else ui.get(section)
        if not isinstance(widgets, Mapping):
            continue
        for key, widget in widgets.items():
            if hasattr(widget, "model_dump"):
                widget = widget.model_dump(by_alias=True)
            if isinstance(widget, Mapping):
                yield section, key, widget


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def check_ui_expressions(ui: Any, file: str = "") -> list[Problem]:
    """Every unparsable ``if_func``/``items_func``/``class_func``/``max_func`` in a ui.json
    (a UiSpec or the raw dict), each a Problem at ``/<section>/<key>/<attribute>``.
    Also checks that ``if`` is a plain name."""
    problems = []
    for section, key, widget in widgets(ui):
        base = f"/{section}/{_escape(key)}"
        for attr in EXPRESSION_KEYS:
            if attr in widget:
                problem = check_expression(widget[attr], pointer=f"{base}/{attr}", file=file)
                if problem:
                    problems.append(problem)
        if "if" in widget:
            cond = widget["if"]
            if not isinstance(cond, str) or not cond.strip():
                problems.append(Problem("'if' must name a sibling parameter", pointer=f"{base}/if",
                                        file=file, given=cond))
            elif not re.fullmatch(r"[A-Za-z_$][\w$.\-]*", cond.strip()):
                problem = check_expression(cond, pointer=f"{base}/if", file=file)
                if problem:
                    problems.append(problem)
    return problems
