// The objects of a Pascal VOC annotation file (Annotations/<id>.xml):
//
//   <annotation> ... <object><name>dog</name><difficult>0</difficult><bndbox>...</bndbox>
//                    <part><name>head</name>...</part></object> ... </annotation>
//
// A small element parser is enough for this schema (elements, text, comments, the XML declaration,
// the five predefined entities); an object's class is its own <name>, not a <part>'s.

export interface VocObject {
  name: string;
  difficult: boolean;
}

interface Element {
  tag: string;
  children: Element[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e: string) => {
    if (e[0] === "#")
      return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

/** Parses the element tree; throws with a short reason when the XML is not well formed. */
export function parseXml(xml: string): Element {
  const root: Element = { tag: "", children: [], text: "" };
  const stack = [root];
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)|(<)/g;
  for (const m of xml.matchAll(token)) {
    const top = stack.at(-1)!;
    const [, cdata, closing, tag, , selfClosing, text, stray] = m;
    if (stray) throw new Error(`unexpected "<" at character ${m.index}`);
    if (text !== undefined) top.text += decodeEntities(text);
    else if (cdata !== undefined) top.text += cdata;
    else if (tag && closing) {
      if (top.tag !== tag) throw new Error(`</${tag}> closes <${top.tag || "(nothing)"}>`);
      stack.pop();
    } else if (tag) {
      const el: Element = { tag, children: [], text: "" };
      top.children.push(el);
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length > 1) throw new Error(`<${stack.at(-1)!.tag}> is never closed`);
  if (root.children.length !== 1) throw new Error(root.children.length ? "more than one root element" : "no element");
  return root.children[0]!;
}

const child = (el: Element, tag: string) => el.children.find((c) => c.tag === tag);

/** The objects an annotation lists; throws when it is not a VOC annotation. */
export function vocObjects(xml: string): VocObject[] {
  const root = parseXml(xml);
  if (root.tag !== "annotation") throw new Error(`the root element is <${root.tag}>, not <annotation>`);
  return root.children
    .filter((c) => c.tag === "object")
    .map((o, i) => {
      const name = child(o, "name")?.text.trim();
      if (!name) throw new Error(`object ${i + 1} has no <name>`);
      return { name, difficult: child(o, "difficult")?.text.trim() === "1" };
    });
}
