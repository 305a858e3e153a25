//! Printing the graph: a readable listing (`vinf graph`) and a Graphviz plate diagram
//! (`vinf graph --format dot`).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Dim, Elem, Model, NodeId, Op, PlateId, Quantity, ShapeDisplay, Site, Target, Ty};

/// The nodes reachable from the model's sites, terms and objectives.
fn live_nodes(m: &Model) -> BTreeSet<NodeId> {
    let mut roots: Vec<NodeId> = Vec::new();
    let sites = m.sites.iter().chain(m.guide.iter().flatten());
    for s in sites {
        roots.extend(site_inputs(s));
    }
    roots.extend(m.terms.iter().map(|t| t.value));
    roots.extend(m.objectives.iter().map(|o| o.expr));
    roots.into_iter().flat_map(|r| m.ancestors(r)).collect()
}

fn site_inputs(s: &Site) -> Vec<NodeId> {
    let mut v = s.dist.args.clone();
    match s.target {
        Target::Data { value, .. } | Target::Derived { value } => v.push(value),
        Target::Latent(_) => {}
    }
    v
}

fn ty_text(m: &Model, ty: &Ty) -> String {
    let elem = match &ty.elem {
        Elem::Real => "real".to_string(),
        Elem::Int => "int".to_string(),
        Elem::Index(k) => format!("cat({k})"),
    };
    let mut s = format!("{elem}{}", ShapeDisplay(&ty.shape));
    if !ty.plates.is_empty() {
        let vars: Vec<&str> = ty.plates.iter().map(|p| m.plate(*p).var.as_str()).collect();
        let _ = write!(s, " | {}", vars.join(","));
    }
    s
}

fn op_text(m: &Model, op: &Op) -> String {
    let n = |id: &NodeId| format!("%{}", id.0);
    let dims = |d: &[Dim]| ShapeDisplay(d).to_string();
    match op {
        Op::Const(v) => format!("const {v}"),
        Op::Literal(vs) => {
            if vs.len() <= 6 {
                format!("literal {vs:?}")
            } else {
                format!("literal [{}, {}, … {} values]", vs[0], vs[1], vs.len())
            }
        }
        Op::Stack(items) => format!("stack({})", items.iter().map(n).collect::<Vec<_>>().join(", ")),
        Op::Data(d) => format!("data {}", m.data[d.index()].name),
        Op::DimValue(d) => format!("dim {d}"),
        Op::Latent(l) => format!("latent {}", m.latent(*l).name),
        Op::Param(p) => format!("param {}", m.params[p.index()].name),
        Op::Draw(d) => format!("draw {}", dist_text(m, d)),
        Op::PlateView { src, plates } => format!(
            "{}[{}]",
            n(src),
            plates
                .iter()
                .map(|p| m.plate(*p).var.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Op::Unplate { src } => format!("whole {}", n(src)),
        Op::Select { src, axis, index } => format!("select {} axis {axis} at {}", n(src), n(index)),
        Op::Slice {
            src,
            axis,
            start,
            end,
        } => {
            let bound = |d: &super::Dim| d.value().map_or_else(|| d.to_string(), |v| v.to_string());
            format!("slice {} axis {axis} {}:{}", n(src), bound(start), bound(end))
        }
        Op::Map(f, a) => format!("{}({})", f.name(), n(a)),
        Op::Zip(f, a, b) => match f {
            super::ZipFn::Min | super::ZipFn::Max => format!("{}({}, {})", f.symbol(), n(a), n(b)),
            _ => format!("{} {} {}", n(a), f.symbol(), n(b)),
        },
        Op::MatMul(a, b) => format!("{} @ {}", n(a), n(b)),
        Op::Reduce(f, a) => format!("{}({})", f.name(), n(a)),
        Op::Softmax { src, log } => format!("{}({})", if *log { "log_softmax" } else { "softmax" }, n(src)),
        Op::Fill { value, shape } => format!("fill({}, {})", n(value), dims(shape)),
        Op::Transpose(a) => format!("transpose({})", n(a)),
        Op::Net { net, input, layer } => match layer {
            Some(k) => format!("{}({}, layer = {k})", m.nets[net.index()].name, n(input)),
            None => format!("{}({})", m.nets[net.index()].name, n(input)),
        },
        Op::Anneal { from, to, steps } => format!("anneal({from}, {to}, {steps})"),
        Op::Scan {
            init,
            body,
            first,
            len,
            ..
        } => format!("scan {first}..{len} from {} of {}", n(init), n(body)),
        Op::ScanIndex(k) => format!("scan {k} step"),
        Op::Compare(f, a, b) => format!("{} {} {}", n(a), f.symbol(), n(b)),
        Op::Where { cond, then, other } => format!("where({}, {}, {})", n(cond), n(then), n(other)),
        Op::ReduceAxis { f, src, axis } => format!("{}({}, axis {axis})", f.name(), n(src)),
        Op::CumSum(a) => format!("cumsum({})", n(a)),
        Op::Shift { src, plate, offset } => format!("{}[{} + {}]", n(src), m.plate(*plate).var, n(offset)),
        Op::ScanPrev(k) => format!("scan {k} previous"),
        Op::Quantity(q) => match q {
            Quantity::Elbo => "elbo".into(),
            Quantity::LogLik => "loglik".into(),
            Quantity::Kl => "kl".into(),
            Quantity::Term(t) => format!("term {}", m.terms[t.index()].name),
        },
    }
}

fn dist_text(_m: &Model, d: &super::DistApp) -> String {
    let args: Vec<String> = d
        .param_names()
        .zip(&d.args)
        .map(|(p, a)| format!("{p}=%{}", a.0))
        .collect();
    let mut s = format!("{}({})", d.family, args.join(", "));
    if !d.iid.is_empty() {
        let _ = write!(s, " {}", ShapeDisplay(&d.iid));
    }
    s
}

fn site_text(m: &Model, s: &Site) -> String {
    let lhs = match &s.target {
        Target::Latent(l) => {
            let lat = m.latent(*l);
            if lat.plates.is_empty() {
                lat.name.clone()
            } else {
                format!(
                    "{}[{}]",
                    lat.name,
                    lat.plates
                        .iter()
                        .map(|p| m.plate(*p).var.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        Target::Data { value, .. } => format!("observe %{}", value.0),
        Target::Derived { value } if s.dist.family == crate::dist::Family::Factor => {
            return format!("target += %{}", value.0);
        }
        Target::Derived { value } => format!("observe %{}", value.0),
    };
    format!("{lhs} ~ {}", dist_text(m, &s.dist))
}

fn line_col(m: &Model, offset: usize) -> (usize, usize) {
    let text = m.source.inner();
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |k| k + 1) + 1;
    (line, col)
}

/// A readable listing: declarations, then every live node and `~` statement in program order,
/// each with its type and source position.
pub fn to_text(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model {}", m.name);
    for p in &m.plates {
        let batch = p.batch.map(|b| format!(" batch {b}")).unwrap_or_default();
        let _ = writeln!(out, "plate {} in {}{batch}", p.var, p.range_text());
    }
    for d in &m.data {
        let _ = writeln!(
            out,
            "data {}: {}{}",
            d.name,
            d.domain.keyword(),
            ShapeDisplay(&d.shape)
        );
    }
    for p in &m.params {
        let _ = writeln!(
            out,
            "param {}: {}{}",
            p.name,
            p.domain.keyword(),
            ShapeDisplay(&p.shape)
        );
    }
    for n in &m.nets {
        let _ = writeln!(
            out,
            "net {}: {} {} ({}, {})",
            n.name,
            n.kind().name(),
            n.describe(),
            n.hidden.name(),
            n.out.name()
        );
    }
    let live = live_nodes(m);
    let width = live
        .iter()
        .map(|id| ty_text(m, &m.node(*id).ty).len())
        .max()
        .unwrap_or(0);
    let mut sections: Vec<(&str, &Vec<Site>)> = vec![("model", &m.sites)];
    if let Some(g) = &m.guide {
        sections.push(("guide", g));
    }
    let mut printed: BTreeSet<NodeId> = BTreeSet::new();
    for (title, sites) in sections {
        let _ = writeln!(out, "{title}:");
        for s in sites {
            let mut needed: Vec<NodeId> = site_inputs(s)
                .into_iter()
                .flat_map(|r| m.ancestors(r))
                .filter(|id| !printed.contains(id))
                .collect();
            needed.sort();
            needed.dedup();
            for id in needed {
                printed.insert(id);
                let node = m.node(id);
                let (l, c) = line_col(m, node.span.start);
                let _ = writeln!(
                    out,
                    "  %{:<4} {:<width$}  = {}  @{l}:{c}",
                    id.0,
                    ty_text(m, &node.ty),
                    op_text(m, &node.op),
                );
            }
            let (l, c) = line_col(m, s.span.start);
            let _ = writeln!(out, "  {}  @{l}:{c}", site_text(m, s));
        }
    }
    if !m.terms.is_empty() || !m.objectives.is_empty() {
        let _ = writeln!(out, "objectives:");
        let roots: Vec<NodeId> = m
            .terms
            .iter()
            .map(|t| t.value)
            .chain(m.objectives.iter().map(|o| o.expr))
            .collect();
        let mut needed: Vec<NodeId> = roots
            .iter()
            .flat_map(|r| m.ancestors(*r))
            .filter(|id| !printed.contains(id))
            .collect();
        needed.sort();
        needed.dedup();
        for id in needed {
            let node = m.node(id);
            let _ = writeln!(
                out,
                "  %{:<4} {:<width$}  = {}",
                id.0,
                ty_text(m, &node.ty),
                op_text(m, &node.op)
            );
        }
        for t in &m.terms {
            let _ = writeln!(out, "  term {} = sum of %{}", t.name, t.value.0);
        }
        for o in &m.objectives {
            let groups: Vec<String> = o
                .groups
                .iter()
                .map(|g| match g {
                    super::Group::Net(n) => m.nets[n.index()].name.clone(),
                    super::Group::Param(p) => m.params[p.index()].name.clone(),
                    super::Group::Guide => "guide".into(),
                })
                .collect();
            let who = if groups.is_empty() {
                "everything else".to_string()
            } else {
                groups.join(", ")
            };
            let _ = writeln!(
                out,
                "  {}: {} %{}",
                who,
                if o.maximise { "maximise" } else { "minimise" },
                o.expr.0
            );
        }
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz plate diagram: latents (white), observations (grey), params and nets (boxes),
/// an edge wherever a distribution's parameters depend on a variable, plates as clusters, and
/// the guide's dependencies as dashed edges.
pub fn to_dot(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&m.name));
    let _ = writeln!(
        out,
        "  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n  edge [arrowsize=0.7];"
    );

    // Graph vertices: one per latent, observed site, param and net, placed in their plates.
    let mut vertices: Vec<(String, String, Vec<PlateId>)> = Vec::new();
    for (k, l) in m.latents.iter().enumerate() {
        let label = format!("{}\\n{}", dot_escape(&l.name), m.sites[l.site].dist.family);
        vertices.push((
            format!("latent{k}"),
            format!("label=\"{label}\", shape=ellipse"),
            l.plates.clone(),
        ));
    }
    for (k, s) in m.sites.iter().enumerate() {
        let name = match &s.target {
            Target::Latent(_) => continue,
            Target::Data { data, .. } => m.data[data.index()].name.clone(),
            Target::Derived { .. } => "observed".into(),
        };
        let label = format!("{}\\n{}", dot_escape(&name), s.dist.family);
        vertices.push((
            format!("obs{k}"),
            format!("label=\"{label}\", shape=ellipse, style=filled, fillcolor=\"#d9d9d9\""),
            s.plates.clone(),
        ));
    }
    for (k, p) in m.params.iter().enumerate() {
        vertices.push((
            format!("param{k}"),
            format!("label=\"{}\", shape=box", dot_escape(&p.name)),
            vec![],
        ));
    }
    for (k, n) in m.nets.iter().enumerate() {
        vertices.push((
            format!("net{k}"),
            format!("label=\"{}\", shape=box3d", dot_escape(&n.name)),
            vec![],
        ));
    }
    // Covariates (data that is not observed) are fixed inputs.
    let observed: BTreeSet<usize> = m
        .sites
        .iter()
        .filter_map(|s| match s.target {
            Target::Data { data, .. } => Some(data.index()),
            _ => None,
        })
        .collect();
    for (k, d) in m.data.iter().enumerate() {
        if !observed.contains(&k) {
            vertices.push((
                format!("data{k}"),
                format!("label=\"{}\", shape=plaintext", dot_escape(&d.name)),
                vec![],
            ));
        }
    }

    // Emit vertices inside nested plate clusters.
    fn emit(
        m: &Model,
        out: &mut String,
        vertices: &[(String, String, Vec<PlateId>)],
        parent: Option<PlateId>,
        depth: usize,
    ) {
        let indent = "  ".repeat(depth);
        for (id, attrs, plates) in vertices {
            if plates.last().copied() == parent {
                let _ = writeln!(out, "{indent}{id} [{attrs}];");
            }
        }
        for (k, p) in m.plates.iter().enumerate() {
            if p.parent == parent {
                let pid = PlateId(k as u32);
                let batch = p.batch.map(|b| format!(", batch {b}")).unwrap_or_default();
                let _ = writeln!(out, "{indent}subgraph cluster_plate{k} {{");
                let _ = writeln!(
                    out,
                    "{indent}  label=\"{} in {}{batch}\"; labeljust=r; labelloc=b; style=rounded;",
                    dot_escape(&p.var),
                    dot_escape(&p.range_text())
                );
                emit(m, out, vertices, Some(pid), depth + 1);
                let _ = writeln!(out, "{indent}}}");
            }
        }
    }
    emit(m, &mut out, &vertices, None, 1);

    // Edges: from every variable a site's distribution (or observed value) depends on.
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for (k, s) in m.sites.iter().enumerate() {
        let to = match s.target {
            Target::Latent(l) => format!("latent{}", l.0),
            _ => format!("obs{k}"),
        };
        for id in site_inputs(s).into_iter().flat_map(|r| m.ancestors(r)) {
            let from = match &m.node(id).op {
                Op::Latent(l) => format!("latent{}", l.0),
                Op::Param(p) => format!("param{}", p.0),
                Op::Net { net, .. } => format!("net{}", net.0),
                Op::Data(d) if !observed.contains(&d.index()) => format!("data{}", d.0),
                _ => continue,
            };
            if from != to {
                edges.insert((from, to.clone()));
            }
        }
    }
    for (a, b) in edges {
        let _ = writeln!(out, "  {a} -> {b};");
    }
    // The guide's dependencies, dashed: what each variational distribution is computed from.
    let obs_vertex = |d: usize| {
        m.sites
            .iter()
            .position(|s| matches!(s.target, Target::Data { data, .. } if data.index() == d))
            .map(|k| format!("obs{k}"))
    };
    let mut guide_edges: BTreeSet<(String, String)> = BTreeSet::new();
    for s in m.guide.iter().flatten() {
        let Target::Latent(l) = s.target else { continue };
        let to = format!("latent{}", l.0);
        for id in site_inputs(s).into_iter().flat_map(|r| m.ancestors(r)) {
            let from = match &m.node(id).op {
                Op::Latent(k) => format!("latent{}", k.0),
                Op::Param(p) => format!("param{}", p.0),
                Op::Net { net, .. } => format!("net{}", net.0),
                Op::Data(d) if observed.contains(&d.index()) => match obs_vertex(d.index()) {
                    Some(v) => v,
                    None => continue,
                },
                Op::Data(d) => format!("data{}", d.0),
                _ => continue,
            };
            if from != to {
                guide_edges.insert((from, to.clone()));
            }
        }
    }
    for (a, b) in guide_edges {
        let _ = writeln!(out, "  {a} -> {b} [style=dashed, color=\"#4a7ab5\"];");
    }
    out.push_str("}\n");
    out
}
