//! The walk over minijinja's syntax tree of a chat template.
//!
//! Two things are looked for:
//!
//! - **Injection gadgets**: the moves of server-side template injection in Python Jinja2
//!   (CVE-2024-34359): dunder attributes (`x.__class__`, `x['__globals__']`), the `attr`
//!   filter, attribute names computed from strings (`x['__cla' ~ 'ss__']`), names that reach
//!   Jinja2's globals (`self`, `lipsum`, `cycler`, `joiner`), `str.format` field access,
//!   template loading, and loops sized to exhaust the renderer.
//! - **Content triggers**: an `if` whose test compares what a message *says* (its content,
//!   not its role) with a string literal, and whose branches emit text. That is the shape of
//!   a behavioural backdoor: instructions that appear only when a user writes a trigger.
//!   What a message says is tracked through the tree: `messages`, a loop variable over it,
//!   `message['content']`, variables `set` from those, methods and filters applied to them.

use std::collections::{HashMap, HashSet};

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::Span;
use minijinja::value::ValueKind;

use super::net;
use crate::{Finding, Severity, Where};

/// Names Python Jinja2 exposes whose attributes lead to Python's globals, or that belong to
/// web frameworks' template contexts; no chat template needs them.
const GLOBAL_GADGETS: &[&str] = &[
    "self",
    "lipsum",
    "cycler",
    "joiner",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "session",
    "os",
    "sys",
    "builtins",
    "globals",
    "locals",
    "getattr",
    "setattr",
    "eval",
    "exec",
    "open",
    "compile",
    "subprocess",
    "importlib",
];

/// Attribute names that only an escape from the sandbox uses (Python internals).
const GADGET_ATTRS: &[&str] = &[
    "mro",
    "func_globals",
    "func_code",
    "f_globals",
    "f_locals",
    "f_back",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "ag_frame",
    "tb_frame",
    "co_code",
    "im_func",
    "popen",
    "system",
    "spawn",
    "import_module",
    "load_module",
    "check_output",
];

/// Message fields that hold what someone wrote (as opposed to `role`, `type`).
const CONTENT_FIELDS: &[&str] = &[
    "content",
    "text",
    "reasoning_content",
    "thinking",
    "reasoning",
    "arguments",
    "name",
];
/// Message fields that hold no text anyone chooses freely.
const NEUTRAL_FIELDS: &[&str] = &["role", "type", "id", "tool_call_id", "index"];

/// Where a value may come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Taint {
    /// The list of messages (or a slice of it).
    msgs: bool,
    /// One message (or a part of one, a tool call).
    msg: bool,
    /// Text someone wrote.
    content: bool,
    /// `loop` of a for loop over messages.
    loop_msgs: bool,
}

impl Taint {
    const NONE: Taint = Taint {
        msgs: false,
        msg: false,
        content: false,
        loop_msgs: false,
    };
    const CONTENT: Taint = Taint {
        content: true,
        ..Taint::NONE
    };
    const MSG: Taint = Taint {
        msg: true,
        ..Taint::NONE
    };
    const MSGS: Taint = Taint {
        msgs: true,
        ..Taint::NONE
    };

    fn or(self, o: Taint) -> Taint {
        Taint {
            msgs: self.msgs || o.msgs,
            msg: self.msg || o.msg,
            content: self.content || o.content,
            loop_msgs: self.loop_msgs || o.loop_msgs,
        }
    }

    fn any(self) -> bool {
        self.msgs || self.msg || self.content
    }
}

/// A content trigger found in the tree: the literal a message must contain (or equal, or
/// start with) for the branch to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The literal.
    pub literal: String,
    /// How it is compared (`contains`, `equals`, `starts with`, …).
    pub how: &'static str,
    /// The texts the branches emit.
    pub emitted: Vec<String>,
    /// Where the `if` is.
    pub location: Where,
}

/// The result of the walk.
pub struct Analysis {
    /// Injection-gadget and network-address findings (content triggers are in `triggers`).
    pub findings: Vec<Finding>,
    /// Content-triggered branches that emit text.
    pub triggers: Vec<Trigger>,
}

/// Walks the template's tree.
pub fn analyze(root: &Stmt<'_>, key: &str, base: Option<u64>) -> Analysis {
    let mut w = Walker {
        key,
        base,
        scope: HashMap::new(),
        defined: HashSet::new(),
        findings: Vec::new(),
        triggers: Vec::new(),
        flagged: HashSet::new(),
        report: false,
    };
    // Taint flows through `set`s, also backwards across loop iterations: one silent pass to
    // settle the scope, then the pass that reports.
    w.stmt(root);
    w.report = true;
    w.stmt(root);
    Analysis {
        findings: w.findings,
        triggers: w.triggers,
    }
}

struct Walker<'k> {
    key: &'k str,
    base: Option<u64>,
    scope: HashMap<String, Taint>,
    defined: HashSet<String>,
    findings: Vec<Finding>,
    triggers: Vec<Trigger>,
    /// Spans already reported (one finding per place and code).
    flagged: HashSet<(u32, &'static str)>,
    report: bool,
}

impl Walker<'_> {
    fn location(&self, span: Span) -> Where {
        Where {
            text: format!(
                "{} line {}, column {}",
                self.key,
                span.start_line,
                u32::from(span.start_col) + 1
            ),
            offset: self.base.map(|b| b + u64::from(span.start_offset)),
            line: Some(u32::from(span.start_line)),
            column: Some(u32::from(span.start_col) + 1),
            shard: 0,
        }
    }

    fn flag(&mut self, span: Span, severity: Severity, code: &'static str, message: String) {
        if !self.report || !self.flagged.insert((span.start_offset, code)) {
            return;
        }
        let location = self.location(span);
        self.findings
            .push(Finding::new(severity, code, message, location));
    }

    fn body(&mut self, stmts: &[Stmt<'_>]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt<'_>) {
        match s {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitExpr(e) => {
                self.expr(&e.expr);
            }
            Stmt::EmitRaw(r) => self.text(r.raw, r.span()),
            Stmt::ForLoop(f) => {
                let t = self.expr(&f.iter);
                let item = if t.msgs {
                    Taint::MSG
                } else if t.msg {
                    Taint::MSG.or(Taint::CONTENT)
                } else if t.content {
                    Taint::CONTENT
                } else {
                    Taint::NONE
                };
                self.bind(&f.target, item);
                if t.msgs {
                    self.scope.insert(
                        "loop".into(),
                        Taint {
                            loop_msgs: true,
                            ..Taint::NONE
                        },
                    );
                }
                if let Some(e) = &f.filter_expr {
                    self.expr(e);
                }
                self.body(&f.body);
                self.body(&f.else_body);
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                if let Some((literal, how)) = self.trigger(&c.expr) {
                    let mut emitted = Vec::new();
                    emitted_texts(&c.true_body, &mut emitted);
                    emitted_texts(&c.false_body, &mut emitted);
                    if !emitted.is_empty() && self.report {
                        let location = self.location(c.span());
                        self.triggers.push(Trigger {
                            literal,
                            how,
                            emitted,
                            location,
                        });
                    }
                }
                self.body(&c.true_body);
                self.body(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    let t = self.expr(value);
                    self.bind(target, t);
                }
                self.body(&w.body);
            }
            Stmt::Set(s) => {
                let t = self.expr(&s.expr);
                self.bind(&s.target, t);
            }
            Stmt::SetBlock(s) => {
                self.body(&s.body);
                if let Some(f) = &s.filter {
                    self.expr(f);
                }
                self.bind(&s.target, Taint::CONTENT);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.body(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.body(&f.body);
            }
            Stmt::Block(b) => self.body(&b.body),
            Stmt::Import(i) => {
                self.load(i.span(), "import");
                self.expr(&i.expr);
            }
            Stmt::FromImport(i) => {
                self.load(i.span(), "from … import");
                self.expr(&i.expr);
            }
            Stmt::Extends(e) => {
                self.load(e.span(), "extends");
                self.expr(&e.name);
            }
            Stmt::Include(i) => {
                self.load(i.span(), "include");
                self.expr(&i.name);
            }
            Stmt::Macro(m) => {
                self.defined.insert(m.name.to_string());
                for a in &m.args {
                    self.bind(a, Taint::NONE);
                }
                for d in &m.defaults {
                    self.expr(d);
                }
                self.body(&m.body);
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call.expr, &c.call.args, c.call.span());
                self.body(&c.macro_decl.body);
            }
            Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::Do(d) => {
                self.call(&d.call.expr, &d.call.args, d.call.span());
            }
        }
    }

    fn load(&mut self, span: Span, what: &str) {
        self.flag(
            span,
            Severity::Warning,
            "template-include",
            format!(
                "`{what}` loads another template: chat-template runtimes have no template \
                 loader, so this only makes sense as an attempt to reach other files"
            ),
        );
    }

    /// Binds names of an assignment target.
    fn bind(&mut self, target: &Expr<'_>, t: Taint) {
        match target {
            Expr::Var(v) => {
                self.defined.insert(v.id.to_string());
                self.scope.insert(v.id.to_string(), t);
            }
            Expr::GetAttr(a) => {
                if let Expr::Var(v) = &a.expr {
                    let key = format!("{}.{}", v.id, a.name);
                    let old = self.scope.get(&key).copied().unwrap_or_default();
                    self.scope.insert(key, old.or(t));
                }
                self.expr(&a.expr);
            }
            Expr::Tuple(tu) => {
                for i in &tu.items {
                    self.bind(i, t);
                }
            }
            Expr::List(l) => {
                for i in &l.items {
                    self.bind(i, t);
                }
            }
            e => {
                self.expr(e);
            }
        }
    }

    fn text(&mut self, text: &str, span: Span) {
        if let Some(addr) = net::find(text) {
            self.flag(
                span,
                Severity::Warning,
                "template-network-address",
                format!("the template's text holds the network address {addr:?}"),
            );
        }
    }

    fn string_const(&mut self, s: &str, span: Span) {
        if is_dunder(s) {
            self.flag(
                span,
                Severity::Warning,
                "template-dunder-string",
                format!(
                    "the string {s:?} names a Python internal attribute; no chat template \
                     needs one"
                ),
            );
        }
        self.text(s, span);
    }

    /// Walks an expression (reporting gadgets) and returns its taint.
    fn expr(&mut self, e: &Expr<'_>) -> Taint {
        match e {
            Expr::Var(v) => {
                if GLOBAL_GADGETS.contains(&v.id) && !self.defined.contains(v.id) {
                    self.flag(
                        v.span(),
                        Severity::Warning,
                        "template-global",
                        format!(
                            "the template uses `{}`, a name that leads to Python's globals in \
                             Jinja2 (or to a web framework's context); no chat template needs it",
                            v.id
                        ),
                    );
                }
                if v.id.starts_with("__") {
                    self.flag(
                        v.span(),
                        Severity::Error,
                        "template-dunder",
                        format!("the template reads the Python internal name `{}`", v.id),
                    );
                }
                match self.scope.get(v.id) {
                    Some(&t) => t,
                    None if v.id == "messages" => Taint::MSGS,
                    None => Taint::NONE,
                }
            }
            Expr::Const(c) => {
                if let Some(s) = c.value.as_str() {
                    self.string_const(s, c.span());
                }
                Taint::NONE
            }
            Expr::Slice(s) => {
                let t = self.expr(&s.expr);
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(x);
                }
                t
            }
            Expr::UnaryOp(u) => {
                self.expr(&u.expr);
                Taint::NONE
            }
            Expr::BinOp(b) => {
                let l = self.expr(&b.left);
                let r = self.expr(&b.right);
                if let (ast::BinOpKind::Mul, Some(n)) = (b.op, big_repeat(&b.left, &b.right)) {
                    self.flag(
                        b.span(),
                        Severity::Warning,
                        "template-runaway",
                        format!("the template repeats a string {n} times: a render that exhausts memory"),
                    );
                }
                match b.op {
                    ast::BinOpKind::Add
                    | ast::BinOpKind::Concat
                    | ast::BinOpKind::ScAnd
                    | ast::BinOpKind::ScOr => l.or(r),
                    _ => Taint::NONE,
                }
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
                Taint::NONE
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                let t = self.expr(&i.true_expr);
                let f = i
                    .false_expr
                    .as_ref()
                    .map(|f| self.expr(f))
                    .unwrap_or_default();
                t.or(f)
            }
            Expr::Filter(f) => {
                let input = f.expr.as_ref().map(|x| self.expr(x)).unwrap_or_default();
                if f.name == "attr" {
                    if let Some(CallArg::Pos(Expr::Const(c))) = f.args.first() {
                        self.flagged
                            .insert((c.span().start_offset, "template-dunder-string"));
                    }
                }
                let args = self.args(&f.args);
                self.filter_gadgets(f);
                filter_taint(f.name, input, args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
                Taint::NONE
            }
            Expr::GetAttr(a) => {
                let t = self.expr(&a.expr);
                if a.name.starts_with("__") {
                    self.flag(
                        a.span(),
                        Severity::Error,
                        "template-dunder",
                        format!(
                            "the template reads the attribute `{}`: a Python internal, the first \
                             step of a sandbox escape (CVE-2024-34359)",
                            a.name
                        ),
                    );
                } else if GADGET_ATTRS.contains(&a.name) {
                    self.flag(
                        a.span(),
                        Severity::Error,
                        "template-gadget",
                        format!(
                            "the template reads the attribute `{}`, which only code escaping \
                             the sandbox uses",
                            a.name
                        ),
                    );
                }
                field_taint(t, Some(a.name))
            }
            Expr::GetItem(g) => {
                let t = self.expr(&g.expr);
                if let Expr::Const(c) = &g.subscript_expr {
                    if c.value.as_str().is_some_and(|k| k.starts_with("__")) {
                        // Reported as a dunder read below, not also as a dunder string.
                        self.flagged
                            .insert((c.span().start_offset, "template-dunder-string"));
                    }
                }
                self.expr(&g.subscript_expr);
                let key = match &g.subscript_expr {
                    Expr::Const(c) => c.value.as_str().map(str::to_string),
                    other => {
                        if let Some(name) = computed_string(other) {
                            self.flag(
                                g.span(),
                                Severity::Error,
                                "template-computed-name",
                                format!(
                                    "the template looks up an item whose name it builds from \
                                     strings ({name:?}): how filters on attribute names are \
                                     evaded"
                                ),
                            );
                        }
                        None
                    }
                };
                if let Some(k) = &key {
                    if k.starts_with("__") {
                        self.flag(
                            g.span(),
                            Severity::Error,
                            "template-dunder",
                            format!(
                                "the template reads the item {k:?}: a Python internal, the first \
                                 step of a sandbox escape (CVE-2024-34359)"
                            ),
                        );
                    }
                }
                if key.is_none() && t.msg {
                    return Taint::MSG.or(Taint::CONTENT);
                }
                field_taint(t, key.as_deref())
            }
            Expr::Call(c) => self.call(&c.expr, &c.args, c.span()),
            Expr::List(l) => l
                .items
                .iter()
                .fold(Taint::NONE, |acc, i| acc.or(self.expr(i))),
            Expr::Tuple(l) => l
                .items
                .iter()
                .fold(Taint::NONE, |acc, i| acc.or(self.expr(i))),
            Expr::Map(m) => {
                for k in &m.keys {
                    self.expr(k);
                }
                m.values
                    .iter()
                    .fold(Taint::NONE, |acc, v| acc.or(self.expr(v)))
            }
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Taint {
        let mut t = Taint::NONE;
        for a in args {
            let e = match a {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => e,
            };
            t = t.or(self.expr(e));
        }
        t
    }

    fn filter_gadgets(&mut self, f: &ast::Spanned<ast::Filter<'_>>) {
        let first_arg = f.args.first().and_then(|a| match a {
            CallArg::Pos(Expr::Const(c)) => c.value.as_str(),
            _ => None,
        });
        let is_attr = f.name == "attr"
            || (matches!(
                f.name,
                "map" | "select" | "reject" | "selectattr" | "rejectattr"
            ) && first_arg == Some("attr"));
        if is_attr {
            let what = match f.args.first() {
                Some(CallArg::Pos(e)) => e
                    .as_const()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .or_else(|| computed_string(e))
                    .map(|s| format!(" (here {s:?})"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            self.flag(
                f.span(),
                Severity::Error,
                "template-attr-filter",
                format!(
                    "the template uses the `attr` filter{what}: it reads attributes by a name \
                     given as a string, the usual way around Jinja2 sandbox checks"
                ),
            );
        }
        if let Some(CallArg::Pos(e)) = f.args.first() {
            if f.name == "attr" && !matches!(e, Expr::Const(_)) {
                if let Some(name) = computed_string(e) {
                    self.flag(
                        e.span(),
                        Severity::Error,
                        "template-computed-name",
                        format!("the attribute name is built from strings ({name:?})"),
                    );
                }
            }
        }
    }

    fn call(&mut self, callee: &Expr<'_>, args: &[CallArg<'_>], span: Span) -> Taint {
        let args_t = self.args(args);
        if let Expr::Var(v) = callee {
            if v.id == "range" {
                if let Some(n) = args.iter().filter_map(const_int).max() {
                    if n > 1_000_000 {
                        self.flag(
                            span,
                            Severity::Warning,
                            "template-runaway",
                            format!("the template loops over range({n}): a render that never ends"),
                        );
                    }
                }
            }
        }
        let t = match callee {
            Expr::GetAttr(a) => {
                let recv = self.expr(&a.expr);
                if matches!(a.name, "format" | "format_map") {
                    if let Expr::Const(c) = &a.expr {
                        if let Some(s) = c.value.as_str() {
                            if format_reaches_attributes(s) {
                                self.flag(
                                    span,
                                    Severity::Error,
                                    "template-format-gadget",
                                    format!(
                                        "`{s:?}.{}(…)` reads attributes through format fields, \
                                         a way past the sandbox's attribute checks",
                                        a.name
                                    ),
                                );
                            }
                        }
                    }
                }
                method_taint(recv, a.name)
            }
            other => {
                self.expr(other);
                // A macro or function: what it returns may hold what it was given.
                if args_t.any() {
                    Taint::CONTENT
                } else {
                    Taint::NONE
                }
            }
        };
        t.or(if args_t.content && !matches!(callee, Expr::GetAttr(_)) {
            Taint::CONTENT
        } else {
            Taint::NONE
        })
    }

    /// The trigger literal of a condition, when it compares message content with one.
    fn trigger(&mut self, e: &Expr<'_>) -> Option<(String, &'static str)> {
        // Evaluated without reporting: only taints are wanted.
        let report = std::mem::replace(&mut self.report, false);
        let r = self.trigger_inner(e);
        self.report = report;
        r
    }

    fn trigger_inner(&mut self, e: &Expr<'_>) -> Option<(String, &'static str)> {
        match e {
            Expr::UnaryOp(u) => self.trigger_inner(&u.expr),
            Expr::BinOp(b) => match b.op {
                ast::BinOpKind::ScAnd | ast::BinOpKind::ScOr => self
                    .trigger_inner(&b.left)
                    .or_else(|| self.trigger_inner(&b.right)),
                ast::BinOpKind::Eq | ast::BinOpKind::Ne => {
                    self.compare(&b.left, &b.right, "equals")
                }
                ast::BinOpKind::In => self.contains(&b.left, &b.right),
                _ => None,
            },
            Expr::Compare(c) => {
                let mut left = &c.expr;
                for op in &c.ops {
                    let found = match op.op {
                        ast::CompareOpKind::Eq | ast::CompareOpKind::Ne => {
                            self.compare(left, &op.expr, "equals")
                        }
                        ast::CompareOpKind::In | ast::CompareOpKind::NotIn => {
                            self.contains(left, &op.expr)
                        }
                        _ => None,
                    };
                    if found.is_some() {
                        return found;
                    }
                    left = &op.expr;
                }
                None
            }
            Expr::Call(c) => {
                let Expr::GetAttr(a) = &c.expr else {
                    return None;
                };
                let how = match a.name {
                    "startswith" => "starts with",
                    "endswith" => "ends with",
                    "find" | "rfind" | "index" | "rindex" | "count" | "__contains__" => "contains",
                    _ => return None,
                };
                if !self.expr(&a.expr).content {
                    return None;
                }
                c.args.iter().find_map(|arg| match arg {
                    CallArg::Pos(x) => literal_of(x).map(|l| (l, how)),
                    _ => None,
                })
            }
            Expr::Test(t) => {
                let how = match t.name {
                    "startingwith" => "starts with",
                    "endingwith" => "ends with",
                    "containing" | "in" => "contains",
                    "eq" | "equalto" | "==" | "sameas" => "equals",
                    _ => return None,
                };
                if !self.expr(&t.expr).content {
                    return None;
                }
                t.args.iter().find_map(|arg| match arg {
                    CallArg::Pos(x) => literal_of(x).map(|l| (l, how)),
                    _ => None,
                })
            }
            Expr::IfExpr(i) => self.trigger_inner(&i.test_expr),
            _ => None,
        }
    }

    fn compare(
        &mut self,
        l: &Expr<'_>,
        r: &Expr<'_>,
        how: &'static str,
    ) -> Option<(String, &'static str)> {
        if self.expr(l).content {
            if let Some(lit) = literal_of(r) {
                return Some((lit, how));
            }
        }
        if self.expr(r).content {
            if let Some(lit) = literal_of(l) {
                return Some((lit, how));
            }
        }
        None
    }

    /// `needle in haystack`: a literal in content, or content in a list of literals.
    fn contains(&mut self, needle: &Expr<'_>, hay: &Expr<'_>) -> Option<(String, &'static str)> {
        if self.expr(hay).content {
            if let Some(lit) = literal_of(needle) {
                return Some((lit, "contains"));
            }
        }
        if self.expr(needle).content {
            if let Some(lit) = literal_of(hay) {
                return Some((lit, "equals"));
            }
        }
        None
    }
}

/// A non-blank string literal, or the first of a list of them.
fn literal_of(e: &Expr<'_>) -> Option<String> {
    let v = e.as_const()?;
    let s = match v.kind() {
        ValueKind::String => v.as_str()?.to_string(),
        ValueKind::Seq => v
            .try_iter()
            .ok()?
            .find_map(|x| x.as_str().map(str::to_string))?,
        _ => return None,
    };
    (!s.trim().is_empty()).then_some(s)
}

fn const_int(a: &CallArg<'_>) -> Option<i64> {
    match a {
        CallArg::Pos(e) => e.as_const().and_then(|v| i64::try_from(v).ok()),
        _ => None,
    }
}

/// `'x' * N` with a huge constant N.
fn big_repeat(l: &Expr<'_>, r: &Expr<'_>) -> Option<i64> {
    let n = [l, r]
        .iter()
        .filter_map(|e| e.as_const().and_then(|v| i64::try_from(v).ok()))
        .max()?;
    let has_str = [l, r]
        .iter()
        .any(|e| e.as_const().is_some_and(|v| v.kind() == ValueKind::String));
    (has_str && n > 1_000_000).then_some(n)
}

/// The taint of `x.name` / `x['name']`.
fn field_taint(t: Taint, name: Option<&str>) -> Taint {
    let mut out = Taint::NONE;
    if t.msgs {
        out = out.or(Taint::MSG);
    }
    if t.loop_msgs && matches!(name, Some("previtem" | "nextitem")) {
        out = out.or(Taint::MSG);
    }
    if t.msg {
        out = out.or(match name {
            Some(n) if NEUTRAL_FIELDS.contains(&n) => Taint::NONE,
            Some(n) if CONTENT_FIELDS.contains(&n) => Taint::CONTENT,
            _ => Taint::MSG,
        });
    }
    if t.content {
        out = out.or(Taint::CONTENT);
    }
    out
}

fn filter_taint(name: &str, input: Taint, args: Taint) -> Taint {
    let counts = matches!(
        name,
        "length" | "count" | "wordcount" | "int" | "float" | "abs"
    );
    let mut out = Taint::NONE;
    if input.msgs {
        out = out.or(match name {
            "first" | "last" | "random" => Taint::MSG,
            "reverse" | "list" | "selectattr" | "rejectattr" | "slice" | "batch" | "sort"
            | "unique" | "select" | "reject" => Taint::MSGS,
            _ if counts => Taint::NONE,
            _ => Taint::CONTENT,
        });
    }
    if input.msg {
        out = out.or(match name {
            "items" | "dictsort" | "list" => Taint::MSG,
            _ if counts => Taint::NONE,
            _ => Taint::CONTENT,
        });
    }
    if input.content && !counts {
        out = out.or(Taint::CONTENT);
    }
    if args.content && matches!(name, "default" | "d" | "replace" | "join") {
        out = out.or(Taint::CONTENT);
    }
    out
}

fn method_taint(recv: Taint, name: &str) -> Taint {
    let predicate = matches!(
        name,
        "startswith"
            | "endswith"
            | "find"
            | "rfind"
            | "index"
            | "rindex"
            | "count"
            | "isdigit"
            | "isalpha"
            | "isspace"
            | "islower"
            | "isupper"
    );
    if predicate {
        return Taint::NONE;
    }
    let mut out = Taint::NONE;
    if recv.msg {
        out = out.or(match name {
            "items" | "values" | "get" => Taint::MSG.or(Taint::CONTENT),
            "keys" => Taint::NONE,
            _ => Taint::CONTENT,
        });
    }
    if recv.msgs {
        out = out.or(Taint::MSG);
    }
    if recv.content {
        out = out.or(Taint::CONTENT);
    }
    out
}

fn is_dunder(s: &str) -> bool {
    s.len() > 4
        && s.starts_with("__")
        && s.ends_with("__")
        && s[2..s.len() - 2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A string an expression builds from literals alone (`'__cla' ~ 'ss__'`, `['__', 'class',
/// '__']|join`, `'__ssalc__'|reverse`), when it is not a plain literal.
pub fn computed_string(e: &Expr<'_>) -> Option<String> {
    match e {
        Expr::Const(_) => None,
        _ => fold(e),
    }
}

fn fold(e: &Expr<'_>) -> Option<String> {
    match e {
        Expr::Const(c) => c.value.as_str().map(str::to_string),
        Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::Concat | ast::BinOpKind::Add) => {
            Some(fold(&b.left)? + &fold(&b.right)?)
        }
        Expr::Filter(f) => {
            let input = f.expr.as_ref()?;
            match f.name {
                "join" => {
                    let sep = match f.args.first() {
                        Some(CallArg::Pos(x)) => fold(x)?,
                        None => String::new(),
                        _ => return None,
                    };
                    let items = match input {
                        Expr::List(l) => &l.items,
                        Expr::Tuple(t) => &t.items,
                        _ => return None,
                    };
                    let parts: Option<Vec<String>> = items.iter().map(fold).collect();
                    Some(parts?.join(&sep))
                }
                "reverse" => Some(fold(input)?.chars().rev().collect()),
                "lower" => Some(fold(input)?.to_lowercase()),
                "upper" => Some(fold(input)?.to_uppercase()),
                "string" | "trim" => fold(input),
                "replace" => {
                    let (Some(CallArg::Pos(a)), Some(CallArg::Pos(b))) =
                        (f.args.first(), f.args.get(1))
                    else {
                        return None;
                    };
                    Some(fold(input)?.replace(&fold(a)?, &fold(b)?))
                }
                "format" => {
                    let mut s = fold(input)?;
                    for a in &f.args {
                        let CallArg::Pos(x) = a else { return None };
                        s = s.replacen("%s", &fold(x)?, 1);
                    }
                    Some(s)
                }
                _ => None,
            }
        }
        Expr::Call(c) => {
            let Expr::GetAttr(a) = &c.expr else {
                return None;
            };
            match a.name {
                "join" => {
                    let sep = fold(&a.expr)?;
                    let Some(CallArg::Pos(Expr::List(l))) = c.args.first() else {
                        return None;
                    };
                    let parts: Option<Vec<String>> = l.items.iter().map(fold).collect();
                    Some(parts?.join(&sep))
                }
                "lower" => Some(fold(&a.expr)?.to_lowercase()),
                "upper" => Some(fold(&a.expr)?.to_uppercase()),
                "strip" => Some(fold(&a.expr)?.trim().to_string()),
                "format" => {
                    let mut s = fold(&a.expr)?;
                    for arg in &c.args {
                        let CallArg::Pos(x) = arg else { return None };
                        s = s.replacen("{}", &fold(x)?, 1);
                    }
                    Some(s)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A `str.format` string whose fields read attributes or items (`{0.__class__}`, `{x[k]}`).
fn format_reaches_attributes(s: &str) -> bool {
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(escaped) = after.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(close) = after.find('}') else { break };
        let field = &after[..close];
        let name = field.split([':', '!']).next().unwrap_or("");
        if name.contains('.') || name.contains('[') {
            return true;
        }
        rest = &after[close + 1..];
    }
    false
}

/// The texts a block of statements emits or stores (literal text, string constants in value
/// positions), recursively; macro bodies excluded.
fn emitted_texts(stmts: &[Stmt<'_>], out: &mut Vec<String>) {
    for s in stmts {
        match s {
            Stmt::EmitRaw(r) => push_text(r.raw, out),
            Stmt::EmitExpr(e) => value_consts(&e.expr, out),
            Stmt::Set(s) => value_consts(&s.expr, out),
            Stmt::SetBlock(s) => emitted_texts(&s.body, out),
            Stmt::IfCond(c) => {
                emitted_texts(&c.true_body, out);
                emitted_texts(&c.false_body, out);
            }
            Stmt::ForLoop(f) => {
                emitted_texts(&f.body, out);
                emitted_texts(&f.else_body, out);
            }
            Stmt::WithBlock(w) => emitted_texts(&w.body, out),
            Stmt::FilterBlock(f) => emitted_texts(&f.body, out),
            Stmt::AutoEscape(a) => emitted_texts(&a.body, out),
            _ => {}
        }
    }
}

fn push_text(s: &str, out: &mut Vec<String>) {
    let t = s.trim();
    if !t.is_empty() && !out.iter().any(|o| o == t) {
        out.push(t.to_string());
    }
}

/// String constants in positions whose value reaches the output.
fn value_consts(e: &Expr<'_>, out: &mut Vec<String>) {
    match e {
        Expr::Const(c) => {
            if let Some(s) = c.value.as_str() {
                push_text(s, out);
            }
        }
        Expr::BinOp(b) => {
            if matches!(
                b.op,
                ast::BinOpKind::Concat
                    | ast::BinOpKind::Add
                    | ast::BinOpKind::ScAnd
                    | ast::BinOpKind::ScOr
                    | ast::BinOpKind::Mul
            ) {
                value_consts(&b.left, out);
                value_consts(&b.right, out);
            }
        }
        Expr::IfExpr(i) => {
            value_consts(&i.true_expr, out);
            if let Some(f) = &i.false_expr {
                value_consts(f, out);
            }
        }
        Expr::Filter(f) => {
            if let Some(x) = &f.expr {
                value_consts(x, out);
            }
            if matches!(f.name, "default" | "d" | "join") {
                for a in &f.args {
                    if let CallArg::Pos(x) = a {
                        value_consts(x, out);
                    }
                }
            }
            if f.name == "replace" {
                if let Some(CallArg::Pos(x)) = f.args.get(1) {
                    value_consts(x, out);
                }
            }
        }
        Expr::Call(c) => match &c.expr {
            Expr::GetAttr(a) => {
                if matches!(a.name, "format" | "join") {
                    value_consts(&a.expr, out);
                    for arg in &c.args {
                        if let CallArg::Pos(x) = arg {
                            value_consts(x, out);
                        }
                    }
                } else if a.name == "replace" {
                    if let Some(CallArg::Pos(x)) = c.args.get(1) {
                        value_consts(x, out);
                    }
                }
            }
            _ => {
                for arg in &c.args {
                    if let CallArg::Pos(x) | CallArg::Kwarg(_, x) = arg {
                        value_consts(x, out);
                    }
                }
            }
        },
        Expr::List(l) => l.items.iter().for_each(|x| value_consts(x, out)),
        Expr::Tuple(l) => l.items.iter().for_each(|x| value_consts(x, out)),
        _ => {}
    }
}
