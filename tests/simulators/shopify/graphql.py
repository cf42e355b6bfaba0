"""A small GraphQL parser, validator, cost calculator and executor.

Enough of GraphQL for what a connector sends: queries and mutations with
variables, arguments, nested selections, aliases, fragments (named and inline),
``@include`` / ``@skip`` and custom directives read by resolvers
(``@idempotent``). No introspection, no subscriptions.

Errors are shaped the way Shopify's GraphQL server writes them: a message,
``locations``, a ``path`` and ``extensions.code``.

Cost follows Shopify's published rules: a scalar or enum field costs 0, an
object 1, a connection 2 plus, per node asked for (``first`` / ``last``), the
node's own cost (1) and that of its selection; a mutation costs 10. The
requested cost is computed before running from the page sizes asked for; the
actual cost after, from the nodes returned.
"""

import base64
import json
import re
from dataclasses import dataclass, field

MUTATION_COST = 10
MAX_PAGE_SIZE = 250


class GraphQLError(Exception):
    """An error reported in the response's ``errors`` list."""

    def __init__(self, message, *, locations=None, path=None, code=None, **extensions):
        super().__init__(message)
        self.message = message
        self.locations = locations
        self.path = path
        self.extensions = {"code": code, **extensions} if code else extensions

    def as_dict(self):
        error = {"message": self.message}
        if self.locations:
            error["locations"] = self.locations
        if self.path:
            error["path"] = self.path
        if self.extensions:
            error["extensions"] = self.extensions
        return error


# --- lexer -----------------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
  | (?P<float>-?(?:0|[1-9]\d*)(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+))
  | (?P<int>-?(?:0|[1-9]\d*))
  | (?P<block>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\")
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    value: str
    line: int
    column: int


def tokenize(source):
    tokens = []
    position, line, line_start = 0, 1, 0
    while position < len(source):
        match = TOKEN.match(source, position)
        if not match:
            raise GraphQLError(
                f"Parse error on {source[position]!r} ({source[position]!r}) "
                f"at [{line}, {position - line_start + 1}]",
                locations=[{"line": line, "column": position - line_start + 1}],
            )
        kind = match.lastgroup
        text = match.group()
        if kind != "skip":
            tokens.append(Token(kind, text, line, position - line_start + 1))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = position + text.rfind("\n") + 1
        position = match.end()
    tokens.append(Token("eof", "", line, position - line_start + 1))
    return tokens


# --- syntax tree ----------------------------------------------------------------


@dataclass
class Variable:
    name: str


class EnumValue(str):
    """An enum literal (``ACTIVE``), kept apart from strings."""


@dataclass
class FieldNode:
    name: str
    alias: str | None
    arguments: dict
    directives: dict
    selections: list
    line: int
    column: int

    @property
    def key(self):
        return self.alias or self.name

    @property
    def location(self):
        return [{"line": self.line, "column": self.column}]


@dataclass
class FragmentSpread:
    name: str
    directives: dict


@dataclass
class InlineFragment:
    type_condition: str | None
    directives: dict
    selections: list


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: dict  # name -> (type text, default)
    directives: dict
    selections: list


@dataclass
class Document:
    operations: list = field(default_factory=list)
    fragments: dict = field(default_factory=dict)


LITERALS = {
    "int": int,
    "float": float,
    "string": json.loads,
    "block": lambda text: text[3:-3].strip(),
}


class Parser:
    def __init__(self, source):
        self.tokens = tokenize(source)
        self.index = 0

    @property
    def token(self):
        return self.tokens[self.index]

    def error(self, expected=None):
        token = self.token
        shown = "end of file" if token.kind == "eof" else f'"{token.value}"'
        message = f"Parse error on {shown} at [{token.line}, {token.column}]"
        if expected:
            message += f" (expected {expected})"
        return GraphQLError(message, locations=[{"line": token.line, "column": token.column}])

    def take(self, kind=None, value=None):
        token = self.token
        if (kind and token.kind != kind) or (value is not None and token.value != value):
            raise self.error(value or kind)
        self.index += 1
        return token

    def peek(self, value):
        return self.token.kind in ("punct", "spread", "name") and self.token.value == value

    def parse_document(self):
        document = Document()
        while self.token.kind != "eof":
            if self.peek("fragment"):
                self.take()
                name = self.take("name").value
                self.take("name", "on")
                type_condition = self.take("name").value
                directives = self.parse_directives()
                document.fragments[name] = InlineFragment(
                    type_condition, directives, self.parse_selection_set()
                )
            elif self.peek("{"):
                document.operations.append(
                    Operation("query", None, {}, {}, self.parse_selection_set())
                )
            elif self.token.kind == "name" and self.token.value in ("query", "mutation"):
                kind = self.take().value
                name = self.take().value if self.token.kind == "name" else None
                variables = self.parse_variable_definitions()
                directives = self.parse_directives()
                document.operations.append(
                    Operation(kind, name, variables, directives, self.parse_selection_set())
                )
            else:
                raise self.error("an operation or a fragment")
        return document

    def parse_variable_definitions(self):
        variables = {}
        if not self.peek("("):
            return variables
        self.take()
        while not self.peek(")"):
            self.take("punct", "$")
            name = self.take("name").value
            self.take("punct", ":")
            type_text = self.parse_type()
            default = None
            if self.peek("="):
                self.take()
                default = self.parse_value(const=True)
            variables[name] = (type_text, default)
        self.take("punct", ")")
        return variables

    def parse_type(self):
        if self.peek("["):
            self.take()
            inner = self.parse_type()
            self.take("punct", "]")
            text = f"[{inner}]"
        else:
            text = self.take("name").value
        if self.peek("!"):
            self.take()
            text += "!"
        return text

    def parse_directives(self):
        directives = {}
        while self.peek("@"):
            self.take()
            name = self.take("name").value
            directives[name] = self.parse_arguments()
        return directives

    def parse_arguments(self):
        arguments = {}
        if not self.peek("("):
            return arguments
        self.take()
        while not self.peek(")"):
            name = self.take("name").value
            self.take("punct", ":")
            arguments[name] = self.parse_value()
        self.take("punct", ")")
        return arguments

    def parse_value(self, const=False):
        token = self.token
        if token.kind in LITERALS:
            self.take()
            return LITERALS[token.kind](token.value)
        if token.kind == "name":
            self.take()
            return {"true": True, "false": False, "null": None}.get(
                token.value, EnumValue(token.value)
            )
        if token.kind == "punct" and token.value == "$" and not const:
            self.take()
            return Variable(self.take("name").value)
        if self.peek("["):
            self.take()
            values = []
            while not self.peek("]"):
                values.append(self.parse_value(const))
            self.take()
            return values
        if self.peek("{"):
            return self.parse_object(const)
        raise self.error("a value")

    def parse_object(self, const):
        self.take("punct", "{")
        values = {}
        while not self.peek("}"):
            name = self.take("name").value
            self.take("punct", ":")
            values[name] = self.parse_value(const)
        self.take()
        return values

    def parse_selection_set(self):
        self.take("punct", "{")
        selections = []
        while not self.peek("}"):
            selections.append(self.parse_selection())
        self.take("punct", "}")
        if not selections:
            raise self.error("a field")
        return selections

    def parse_selection(self):
        if self.token.kind == "spread":
            self.take()
            if self.peek("on"):
                self.take()
                type_condition = self.take("name").value
                directives = self.parse_directives()
                return InlineFragment(type_condition, directives, self.parse_selection_set())
            if self.peek("{") or self.peek("@"):
                directives = self.parse_directives()
                return InlineFragment(None, directives, self.parse_selection_set())
            name = self.take("name").value
            return FragmentSpread(name, self.parse_directives())
        start = self.take("name")
        alias, name = None, start.value
        if self.peek(":"):
            self.take()
            alias, name = name, self.take("name").value
        arguments = self.parse_arguments()
        directives = self.parse_directives()
        selections = self.parse_selection_set() if self.peek("{") else []
        return FieldNode(name, alias, arguments, directives, selections, start.line, start.column)


def parse(source):
    return Parser(source).parse_document()


# --- schema ---------------------------------------------------------------------


@dataclass
class FieldDef:
    """A field of an object type.

    kind: ``scalar`` (scalars, enums and lists of them), ``object``, ``list``
    (a list of objects) or ``connection`` (a paginated list of objects).
    ``resolve(parent, args, info)`` returns the value; by default the
    parent's key of the same name. ``cost`` overrides the default cost.
    """

    type: str = ""
    kind: str = "scalar"
    resolve: object = None
    args: dict = field(default_factory=dict)
    cost: int | None = None


def scalar(resolve=None):
    return FieldDef(kind="scalar", resolve=resolve)


def obj(type_name, resolve=None, **args):
    return FieldDef(type_name, "object", resolve, args)


def objects(type_name, resolve=None, **args):
    return FieldDef(type_name, "list", resolve, args)


def connection(type_name, resolve=None, **args):
    return FieldDef(type_name, "connection", resolve, args)


@dataclass
class ObjectType:
    name: str
    fields: dict
    possible_types: tuple = ()  # non-empty for interfaces and unions


class Schema:
    def __init__(self, types, query="QueryRoot", mutation="Mutation"):
        self.types = {t.name: t for t in types}
        self.query = query
        self.mutation = mutation

    def field(self, type_name, field_name, node):
        object_type = self.types[type_name]
        if field_name == "__typename":
            return FieldDef(kind="scalar")
        definition = object_type.fields.get(field_name)
        if definition is None:
            for possible in object_type.possible_types:
                definition = self.types[possible].fields.get(field_name)
                if definition:
                    break
        if definition is None:
            raise GraphQLError(
                f"Field '{field_name}' doesn't exist on type '{type_name}'",
                locations=node.location,
                code="undefinedField",
                typeName=type_name,
                fieldName=field_name,
            )
        return definition

    def applies(self, type_condition, type_name):
        """Whether a fragment on ``type_condition`` applies to an object of ``type_name``."""
        if type_condition is None or type_condition == type_name:
            return True
        condition = self.types.get(type_condition)
        return bool(condition and type_name in condition.possible_types)


@dataclass
class Page:
    """One page of a connection: nodes with their cursors and page info."""

    nodes: list
    cursors: list
    has_next: bool
    has_previous: bool


def encode_cursor(key):
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return tuple(json.loads(base64.urlsafe_b64decode(padded.encode())))
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort. {cursor!r}") from exc


def paginate(items, args, key):
    """A page of ``items`` under first/after/last/before/reverse.

    ``key(item)`` is the item's position in the sort order and must be unique
    (sort value, then id): a cursor names a position, not an index, so paging
    stays right when items are inserted or updated meanwhile, and resumes after
    an item that left the list.
    """
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The '{name}' argument must be between 0 and {MAX_PAGE_SIZE}.",
                code="BAD_REQUEST",
            )
    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    keys = [tuple(key(item)) for item in ordered]

    def past(candidate, cursor):
        return candidate < cursor if reverse else candidate > cursor

    start, end = 0, len(ordered)
    if args.get("after"):
        after = decode_cursor(args["after"])
        start = next((i for i, k in enumerate(keys) if past(k, after)), len(ordered))
    if args.get("before"):
        before = decode_cursor(args["before"])
        end = next((i for i, k in enumerate(keys) if not past(before, k)), len(ordered))
        end = max(end, start)
    window = list(range(start, end))
    has_next = end < len(ordered)
    has_previous = start > 0
    if first is not None and len(window) > first:
        window, has_next = window[:first], True
    if last is not None and len(window) > last:
        window, has_previous = window[-last:], True
    return Page(
        [ordered[i] for i in window],
        [encode_cursor(keys[i]) for i in window],
        has_next,
        has_previous,
    )


# --- execution ------------------------------------------------------------------


@dataclass
class Info:
    """What a resolver gets besides its parent and arguments."""

    context: object
    node: FieldNode
    path: list
    directives: dict
    operation: Operation


class Executor:
    def __init__(self, schema):
        self.schema = schema

    # preparation ---------------------------------------------------------------
    def prepare(self, source, variables=None, operation_name=None):
        """Parse, pick the operation, coerce variables; raises a list of GraphQLError."""
        if not source or not isinstance(source, str):
            raise GraphQLErrors([GraphQLError("No query string was present")])
        try:
            document = parse(source)
        except GraphQLError as exc:
            raise GraphQLErrors([exc]) from exc
        operations = document.operations
        if operation_name:
            operations = [op for op in operations if op.name == operation_name]
            if not operations:
                raise GraphQLErrors([GraphQLError(f'No operation named "{operation_name}"')])
        if len(operations) != 1:
            raise GraphQLErrors(
                [GraphQLError("An operation name is required")]
                if operations
                else [GraphQLError("No operations in the document")]
            )
        operation = operations[0]
        values = self._coerce_variables(operation, variables or {})
        prepared = Prepared(operation, document.fragments, values)
        root = self.schema.mutation if operation.kind == "mutation" else self.schema.query
        prepared.requested_cost = self._walk_cost(prepared, root, operation.selections, [])
        if operation.kind == "mutation":
            prepared.requested_cost = MUTATION_COST * len(
                self._collect(prepared, operation.selections, root)
            )
        if prepared.errors:
            raise GraphQLErrors(prepared.errors)
        return prepared

    def _coerce_variables(self, operation, given):
        values = {}
        errors = []
        for name, (type_text, default) in operation.variables.items():
            if name in given:
                values[name] = given[name]
            elif default is not None:
                values[name] = default
            elif type_text.endswith("!"):
                errors.append(
                    GraphQLError(
                        f"Variable ${name} of type {type_text} was provided invalid value",
                        code="INVALID_VARIABLE",
                        value=None,
                        problems=[{"path": [], "explanation": "Expected value to not be null"}],
                    )
                )
        if errors:
            raise GraphQLErrors(errors)
        return values

    def _collect(self, prepared, selections, type_name):
        """Fields selected on an object of ``type_name``, fragments expanded."""
        collected = []
        for selection in selections:
            if not self._included(prepared, selection.directives):
                continue
            if isinstance(selection, FieldNode):
                collected.append(selection)
            elif isinstance(selection, FragmentSpread):
                fragment = prepared.fragments.get(selection.name)
                if fragment is None:
                    raise GraphQLError(f"Fragment {selection.name} was used, but not defined")
                if self.schema.applies(fragment.type_condition, type_name):
                    collected.extend(self._collect(prepared, fragment.selections, type_name))
            elif self.schema.applies(selection.type_condition, type_name):
                collected.extend(self._collect(prepared, selection.selections, type_name))
        return collected

    def _included(self, prepared, directives):
        if "skip" in directives and self.arguments(prepared, directives["skip"]).get("if"):
            return False
        if "include" in directives:
            return bool(self.arguments(prepared, directives["include"]).get("if"))
        return True

    def arguments(self, prepared, raw):
        return {name: self._value(prepared, value) for name, value in raw.items()}

    def _value(self, prepared, value):
        if isinstance(value, Variable):
            return prepared.variables.get(value.name)
        if isinstance(value, list):
            return [self._value(prepared, v) for v in value]
        if isinstance(value, dict):
            return {k: self._value(prepared, v) for k, v in value.items()}
        return value

    def _selection_types(self, type_name):
        """For cost: an abstract type is costed as its most expensive possible type."""
        object_type = self.schema.types[type_name]
        return object_type.possible_types or (type_name,)

    def _walk_cost(self, prepared, type_name, selections, path):
        """Requested cost of a selection on ``type_name``; validates fields as it goes."""
        best = 0
        for concrete in self._selection_types(type_name):
            total = 0
            try:
                nodes = self._collect(prepared, selections, concrete)
            except GraphQLError as exc:
                prepared.errors.append(exc)
                return 0
            for node in nodes:
                try:
                    definition = self.schema.field(concrete, node.name, node)
                except GraphQLError as exc:
                    if not self.schema.types[type_name].possible_types:
                        exc.path = [*path, node.key]
                        prepared.errors.append(exc)
                    continue
                total += self._field_cost(prepared, definition, node, [*path, node.key])
            best = max(best, total)
        return best

    def _field_cost(self, prepared, definition, node, path):
        if definition.kind == "scalar":
            if node.selections:
                prepared.errors.append(
                    GraphQLError(
                        f"Selections can't be made on scalars (field '{node.name}')",
                        locations=node.location,
                        path=path,
                        code="selectionMismatch",
                    )
                )
            return 0
        if not node.selections:
            prepared.errors.append(
                GraphQLError(
                    f"Field must have selections (field '{node.name}' returns "
                    f"{definition.type} but has no selections.",
                    locations=node.location,
                    path=path,
                    code="selectionMismatch",
                )
            )
            return 0
        if definition.kind == "connection":
            args = self.arguments(prepared, node.arguments)
            size = args.get("first") or args.get("last") or 0
            return 2 + size * self._connection_node_cost(prepared, definition, node, path)
        inner = self._walk_cost(prepared, definition.type, node.selections, path)
        own = 1 if definition.cost is None else definition.cost
        return own + inner

    def _connection_node_cost(self, prepared, definition, node, path):
        """Cost of one node of a connection: 1 plus its selection, via edges or nodes."""
        best = 0
        for part in self._collect(prepared, node.selections, f"{definition.type}Connection"):
            if part.name == "nodes":
                best = max(
                    best,
                    self._walk_cost(prepared, definition.type, part.selections, [*path, "nodes"]),
                )
            elif part.name == "edges":
                for edge_part in self._collect(prepared, part.selections, "Edge"):
                    if edge_part.name == "node":
                        best = max(
                            best,
                            self._walk_cost(
                                prepared,
                                definition.type,
                                edge_part.selections,
                                [*path, "edges", "node"],
                            ),
                        )
                    elif edge_part.name not in ("cursor", "__typename"):
                        prepared.errors.append(
                            GraphQLError(
                                f"Field '{edge_part.name}' doesn't exist on type "
                                f"'{definition.type}Edge'",
                                locations=edge_part.location,
                                code="undefinedField",
                            )
                        )
            elif part.name not in ("pageInfo", "__typename"):
                prepared.errors.append(
                    GraphQLError(
                        f"Field '{part.name}' doesn't exist on type '{definition.type}Connection'",
                        locations=part.location,
                        code="undefinedField",
                    )
                )
        return 1 + best

    # execution -----------------------------------------------------------------
    def execute(self, prepared, context):
        """Run the operation: (data, errors, actual cost)."""
        root = self.schema.mutation if prepared.operation.kind == "mutation" else self.schema.query
        run = Run(prepared, context)
        data = self._object(run, root, {}, prepared.operation.selections, [])
        actual = run.cost
        if prepared.operation.kind == "mutation":
            actual = prepared.requested_cost
        return data, [e.as_dict() for e in run.errors], actual

    def _object(self, run, type_name, parent, selections, path):
        concrete = parent.get("__typename", type_name) if isinstance(parent, dict) else type_name
        result = {}
        for node in self._collect(run.prepared, selections, concrete):
            field_path = [*path, node.key]
            if node.name == "__typename":
                result[node.key] = concrete
                continue
            try:
                definition = self.schema.field(concrete, node.name, node)
                result[node.key] = self._field(run, definition, parent, node, field_path)
            except GraphQLError as exc:
                exc.path = exc.path or field_path
                exc.locations = exc.locations or node.location
                run.errors.append(exc)
                result[node.key] = None
        return result

    def _field(self, run, definition, parent, node, path):
        args = {**definition.args, **self.arguments(run.prepared, node.arguments)}
        if definition.resolve is None:
            value = parent.get(node.name) if isinstance(parent, dict) else None
        else:
            info = Info(
                run.context,
                node,
                path,
                {k: self.arguments(run.prepared, v) for k, v in node.directives.items()},
                run.prepared.operation,
            )
            value = definition.resolve(parent, args, info)
        if definition.kind == "scalar" or value is None:
            return value
        if definition.kind == "object":
            run.cost += 1
            return self._object(run, definition.type, value, node.selections, path)
        if definition.kind == "list":
            # Costed like the request: once, at its most expensive item.
            before, costs, items = run.cost, [0], []
            for i, item in enumerate(value):
                run.cost = 0
                items.append(
                    None
                    if item is None
                    else self._object(run, definition.type, item, node.selections, [*path, i])
                )
                costs.append(run.cost)
            run.cost = before + 1 + max(costs)
            return items
        return self._connection(run, definition, value, node, path)

    def _connection(self, run, definition, page, node, path):
        # 2, plus 1 and the selection's cost per node returned (added as they render)
        run.cost += 2 + len(page.nodes)
        result = {}
        for part in self._collect(run.prepared, node.selections, f"{definition.type}Connection"):
            if part.name == "__typename":
                result[part.key] = f"{definition.type}Connection"
            elif part.name == "pageInfo":
                info = {
                    "hasNextPage": page.has_next,
                    "hasPreviousPage": page.has_previous,
                    "startCursor": page.cursors[0] if page.cursors else None,
                    "endCursor": page.cursors[-1] if page.cursors else None,
                }
                result[part.key] = {
                    p.key: info.get(p.name, "PageInfo")
                    for p in self._collect(run.prepared, part.selections, "PageInfo")
                }
            elif part.name == "nodes":
                result[part.key] = [
                    self._object(run, definition.type, item, part.selections, [*path, part.key, i])
                    for i, item in enumerate(page.nodes)
                ]
            elif part.name == "edges":
                edges = []
                for i, (item, cursor) in enumerate(zip(page.nodes, page.cursors, strict=True)):
                    edge = {}
                    for edge_part in self._collect(run.prepared, part.selections, "Edge"):
                        if edge_part.name == "cursor":
                            edge[edge_part.key] = cursor
                        elif edge_part.name == "node":
                            edge[edge_part.key] = self._object(
                                run,
                                definition.type,
                                item,
                                edge_part.selections,
                                [*path, part.key, i, edge_part.key],
                            )
                        else:
                            edge[edge_part.key] = f"{definition.type}Edge"
                    edges.append(edge)
                result[part.key] = edges
        return result


class GraphQLErrors(Exception):
    """Errors that stop a request before it runs (syntax, validation, variables)."""

    def __init__(self, errors):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass
class Prepared:
    operation: Operation
    fragments: dict
    variables: dict
    requested_cost: int = 0
    errors: list = field(default_factory=list)  # validation errors found while costing

    @property
    def root_fields(self):
        return [s.name for s in self.operation.selections if isinstance(s, FieldNode)]


@dataclass
class Run:
    prepared: Prepared
    context: object
    errors: list = field(default_factory=list)
    cost: int = 0
