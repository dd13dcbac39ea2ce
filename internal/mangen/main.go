// Command mangen makes a manual page (roff) from Markdown with go-md2man,
// so that the manual page is made from the same text as the docs:
//
//	mangen SRC.md OUT
//
// SRC.md is Markdown as go-md2man reads it (its first heading is the .TH
// line). A line
//
//	<!-- include: PATH -->
//
// in it is replaced by the Markdown file PATH (relative to SRC.md) from its
// first second-level heading on: its title and introduction are left out.
// Links to other Markdown files of the repository become the file's path
// from the module root ("Caching (docs/operations.md)"), links within a
// document become their text, and links to web pages stay. Run by go
// generate in package man; a test fails when man/sievefs.8 is not what
// mangen makes of man/sievefs.8.md.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/russross/blackfriday/v2"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mangen SRC.md OUT")
		os.Exit(2)
	}
	page, err := render(os.Args[1])
	if err == nil {
		err = os.WriteFile(os.Args[2], page, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

// includeLine is an include directive of the source.
var includeLine = regexp.MustCompile(`(?m)^<!-- include: (\S+) -->$`)

// render makes the roff page of the Markdown file src.
func render(src string) ([]byte, error) {
	root, err := moduleRoot(src)
	if err != nil {
		return nil, err
	}
	md := md2man.NewRoffRenderer()
	r := tableRenderer{md}
	parser := func() *blackfriday.Markdown {
		return blackfriday.New(blackfriday.WithExtensions(md.GetExtensions()))
	}
	doc, err := parseFile(parser(), root, src)
	if err != nil {
		return nil, err
	}
	var includes []*blackfriday.Node
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if n.Type == blackfriday.HTMLBlock && includeLine.Match(n.Literal) {
			includes = append(includes, n)
		}
		return blackfriday.GoToNext
	})
	for _, n := range includes {
		m := includeLine.FindSubmatch(n.Literal)
		inc, err := parseFile(parser(), root, filepath.Join(filepath.Dir(src), string(m[1])))
		if err != nil {
			return nil, err
		}
		if err := splice(n, inc); err != nil {
			return nil, fmt.Errorf("include %s: %w", m[1], err)
		}
	}
	if err := checkNodes(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	var b bytes.Buffer
	r.RenderHeader(&b, doc)
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		return r.RenderNode(&b, n, entering)
	})
	r.RenderFooter(&b, doc)
	return asciiRoff(b.Bytes()), nil
}

// asciiRoff writes the characters beyond ASCII as groff escapes (\[u2026]
// for …): man(1) reads a page given by its path (man -l) as Latin-1.
func asciiRoff(page []byte) []byte {
	var b bytes.Buffer
	for _, r := range string(page) {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.Bytes()
}

// tableRenderer is go-md2man's renderer with tables set as tagged
// paragraphs (.TP), as manual pages list options: the first cell is the
// tag, the other cells the paragraph, each but the last after its column's
// heading ("Default: none."). go-md2man sets tables with tbl, where a cell
// that starts with code runs past the right margin and a column of long
// text is squeezed to a quarter of the line.
type tableRenderer struct{ blackfriday.Renderer }

// RenderNode renders tables, and leaves the rest to go-md2man.
func (r tableRenderer) RenderNode(w io.Writer, n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
	if n.Type != blackfriday.Table {
		return r.Renderer.RenderNode(w, n, entering)
	}
	if !entering {
		return blackfriday.GoToNext
	}
	io.WriteString(w, "\n")
	var heads []*blackfriday.Node
	n.Walk(func(c *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if entering && c.Type == blackfriday.TableRow && c.Parent.Type == blackfriday.TableHead {
			for h := c.FirstChild; h != nil; h = h.Next {
				heads = append(heads, h)
			}
		}
		if entering && c.Type == blackfriday.TableRow && c.Parent.Type == blackfriday.TableBody {
			r.row(w, c, heads)
		}
		return blackfriday.GoToNext
	})
	return blackfriday.SkipChildren
}

// row renders one table row as a tagged paragraph.
func (r tableRenderer) row(w io.Writer, row *blackfriday.Node, heads []*blackfriday.Node) {
	io.WriteString(w, ".TP\n")
	for i, c := 0, row.FirstChild; c != nil; i, c = i+1, c.Next {
		if plainText(c) == "" {
			continue
		}
		if i > 0 && c.Next != nil && i < len(heads) {
			r.inline(w, heads[i])
			io.WriteString(w, ": ")
		}
		r.inline(w, c)
		switch {
		case c.Next == nil:
		case i == 0:
			io.WriteString(w, "\n")
		default:
			io.WriteString(w, ".\n.br\n")
		}
	}
	io.WriteString(w, "\n")
}

// inline renders the inline content of a table cell. In a cell, \| is a
// | that does not end the cell, in code spans too (as GitHub reads it).
func (r tableRenderer) inline(w io.Writer, cell *blackfriday.Node) {
	for c := cell.FirstChild; c != nil; c = c.Next {
		c.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
			if n.Type == blackfriday.Code {
				n.Literal = bytes.ReplaceAll(n.Literal, []byte(`\|`), []byte("|"))
			}
			return r.Renderer.RenderNode(w, n, entering)
		})
	}
}

// moduleRoot returns the directory of the go.mod above file.
func moduleRoot(file string) (string, error) {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.mod above %s", file)
		}
	}
}

// parseFile parses a Markdown file and rewrites its links for a manual
// page (see unlink).
func parseFile(p *blackfriday.Markdown, root, file string) (*blackfriday.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Rel(root, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	doc := p.Parse(data)
	var links []*blackfriday.Node
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if n.Type == blackfriday.Link && entering {
			links = append(links, n)
		}
		return blackfriday.GoToNext
	})
	for _, l := range links {
		unlink(l, filepath.ToSlash(dir))
	}
	return doc, nil
}

// unlink turns a link to a file of the repository (relative to dir, from
// the module root) into text a manual page can show: its text, followed by
// the file's path when the text does not name it. Links with a scheme
// (https:) are left to go-md2man.
func unlink(l *blackfriday.Node, dir string) {
	dest := string(l.LinkData.Destination)
	if strings.Contains(dest, ":") {
		return
	}
	file, _, _ := strings.Cut(dest, "#")
	var target string
	if file != "" {
		target = path.Join(dir, file)
	}
	text := plainText(l)
	switch {
	case target == "" || text == target:
	case text == file:
		// The text names the file from the doc: name it from the root.
		for l.FirstChild != nil {
			l.FirstChild.Unlink()
		}
		l.AppendChild(textNode(target))
	default:
		l.AppendChild(textNode(" (" + target + ")"))
	}
	for l.FirstChild != nil {
		c := l.FirstChild
		c.Unlink()
		l.InsertBefore(c)
	}
	l.Unlink()
}

// textNode returns a Text node of s.
func textNode(s string) *blackfriday.Node {
	t := blackfriday.NewNode(blackfriday.Text)
	t.Literal = []byte(s)
	return t
}

// plainText returns the text of a node's leaves.
func plainText(n *blackfriday.Node) string {
	var b strings.Builder
	n.Walk(func(c *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if entering && c.IsLeaf() {
			b.Write(c.Literal)
		}
		return blackfriday.GoToNext
	})
	return b.String()
}

// splice replaces the include directive n by the blocks of the included
// document from its first second-level heading on.
func splice(n, inc *blackfriday.Node) error {
	c := inc.FirstChild
	for c != nil && !(c.Type == blackfriday.Heading && c.Level == 2) {
		c = c.Next
	}
	if c == nil {
		return fmt.Errorf("no second-level heading")
	}
	for c != nil {
		next := c.Next
		c.Unlink()
		n.InsertBefore(c)
		c = next
	}
	n.Unlink()
	return nil
}

// checkNodes refuses what go-md2man would drop with only a warning: HTML
// other than comments (a leftover include directive among them), and
// images.
func checkNodes(doc *blackfriday.Node) error {
	var err error
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		switch {
		case n.Type == blackfriday.HTMLBlock && (!bytes.HasPrefix(n.Literal, []byte("<!--")) || includeLine.Match(n.Literal)),
			n.Type == blackfriday.HTMLSpan, n.Type == blackfriday.Image:
			err = fmt.Errorf("a manual page cannot show %s %q", n.Type, n.Literal)
			return blackfriday.Terminate
		}
		return blackfriday.GoToNext
	})
	return err
}
