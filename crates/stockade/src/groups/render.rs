//! Pictures of an attestation graph: Graphviz DOT text, and an SVG drawn here (members on a
//! circle, one arrow per attestation from attester to attestee) so no external tool is needed.

use std::collections::BTreeSet;
use std::f64::consts::PI;
use std::fmt::Write as _;

use stockade_core::NodeId;

/// Width and height of the SVG picture, in pixels.
const SVG_SIZE_PX: f64 = 640.0;
/// Radius of a member's circle, in pixels.
const NODE_RADIUS_PX: f64 = 16.0;
/// How far the two arrows of a mutual attestation are pulled apart, in pixels.
const MUTUAL_OFFSET_PX: f64 = 4.0;

/// What a picture shows: the members (highlighting those outside the view) and the attestations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphPicture {
    /// The group's name, shown as the title.
    pub title: String,
    /// Every node drawn.
    pub nodes: BTreeSet<NodeId>,
    /// The nodes in the observer's view (the others are drawn grey).
    pub view: BTreeSet<NodeId>,
    /// Attestations, `(attester, attestee)`.
    pub attestations: BTreeSet<(NodeId, NodeId)>,
}

impl GraphPicture {
    /// `observer`'s view and each node's attestations as text, one line each.
    pub fn describe(&self, observer: NodeId) -> String {
        let mut text = String::new();
        let view: Vec<String> = self.view.iter().map(|n| n.0.to_string()).collect();
        let _ = writeln!(
            text,
            "view of member {} ({} members): {}",
            observer.0,
            view.len(),
            view.join(" ")
        );
        for node in &self.nodes {
            let attests: Vec<String> = self
                .attestations
                .iter()
                .filter(|(from, _)| from == node)
                .map(|(_, to)| to.0.to_string())
                .collect();
            let _ = writeln!(text, "  {} attests {}", node.0, attests.join(" "));
        }
        text
    }

    /// The graph in Graphviz DOT (`dot -Tpng graph.dot > graph.png` draws it).
    pub fn to_dot(&self) -> String {
        let mut dot = String::new();
        let _ = writeln!(dot, "digraph attestations {{");
        let _ = writeln!(dot, "  label={:?};", self.title);
        let _ = writeln!(dot, "  layout=circo;");
        let _ = writeln!(dot, "  node [shape=circle];");
        for node in &self.nodes {
            let style = if self.view.contains(node) {
                ""
            } else {
                " [style=dashed, color=grey]"
            };
            let _ = writeln!(dot, "  n{}{style};", node.0);
        }
        for (from, to) in &self.attestations {
            let _ = writeln!(dot, "  n{} -> n{};", from.0, to.0);
        }
        dot.push_str("}\n");
        dot
    }

    /// The graph as a standalone SVG document: members evenly on a circle, an arrow per
    /// attestation (mutual attestations as two parallel arrows).
    pub fn to_svg(&self) -> String {
        let centre = SVG_SIZE_PX / 2.0;
        let ring = centre - 3.0 * NODE_RADIUS_PX;
        let count = self.nodes.len().max(1) as f64;
        let position = |node: NodeId| -> (f64, f64) {
            let index = self.nodes.iter().position(|&n| n == node).unwrap_or(0) as f64;
            let angle = 2.0 * PI * index / count - PI / 2.0;
            (centre + ring * angle.cos(), centre + ring * angle.sin())
        };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{0}" viewBox="0 0 {0} {0}" font-family="sans-serif">"#,
            SVG_SIZE_PX
        );
        svg.push_str(
            r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#336"/></marker></defs>
"##,
        );
        let _ = writeln!(
            svg,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{centre}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
            xml_escape(&self.title)
        );
        for &(from, to) in &self.attestations {
            let (x1, y1) = position(from);
            let (x2, y2) = position(to);
            let (dx, dy) = (x2 - x1, y2 - y1);
            let length = (dx * dx + dy * dy).sqrt().max(f64::EPSILON);
            let (ux, uy) = (dx / length, dy / length);
            // Pull a mutual pair apart: each arrow moves to its own side of the line.
            let offset = if self.attestations.contains(&(to, from)) {
                MUTUAL_OFFSET_PX
            } else {
                0.0
            };
            let (ox, oy) = (-uy * offset, ux * offset);
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#336" stroke-width="1.2" marker-end="url(#arrow)"/>"##,
                x1 + ux * NODE_RADIUS_PX + ox,
                y1 + uy * NODE_RADIUS_PX + oy,
                x2 - ux * NODE_RADIUS_PX + ox,
                y2 - uy * NODE_RADIUS_PX + oy,
            );
        }
        for &node in &self.nodes {
            let (x, y) = position(node);
            let fill = if self.view.contains(&node) {
                "#cde"
            } else {
                "#ddd"
            };
            let _ = writeln!(
                svg,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="{NODE_RADIUS_PX}" fill="{fill}" stroke="#336"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"##,
                y + 4.0,
                node.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture() -> GraphPicture {
        GraphPicture {
            title: "group <1>".into(),
            nodes: [0, 1, 2].map(NodeId).into(),
            view: [0, 1].map(NodeId).into(),
            attestations: [(0, 1), (1, 0), (1, 2)]
                .map(|(a, b)| (NodeId(a), NodeId(b)))
                .into(),
        }
    }

    #[test]
    fn dot_has_one_edge_per_attestation_and_marks_nodes_outside_the_view() {
        let dot = picture().to_dot();
        assert!(dot.starts_with("digraph attestations {"));
        assert_eq!(dot.matches(" -> ").count(), 3);
        assert!(dot.contains("n1 -> n2;"));
        assert!(dot.contains("n2 [style=dashed, color=grey];"));
        assert!(dot.contains("  n0;\n"));
    }

    #[test]
    fn describe_lists_the_view_and_each_nodes_attestations() {
        let text = picture().describe(NodeId(0));
        assert!(
            text.starts_with("view of member 0 (2 members): 0 1\n"),
            "{text}"
        );
        assert!(text.contains("  1 attests 0 2\n"), "{text}");
        assert!(text.contains("  2 attests \n"), "{text}");
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn svg_draws_every_member_and_arrow_and_escapes_the_title() {
        let svg = picture().to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("marker-end=\"url(#arrow)\"").count(), 3);
        assert!(svg.contains("group &lt;1&gt;"));
        assert_eq!(
            svg.matches("fill=\"#ddd\"").count(),
            1,
            "node 2 is outside the view"
        );
    }
}
