package mimic

// Chooser computes the choices members of one view and epoch would make,
// whether or not they are in the view, without rebuilding anything per
// call: Table.Choose rebuilds the rings it dropped, which is fine once but
// not for a simulated adversary trying a million identities.
type Chooser struct{ t *Table }

// NewChooser keeps the rings of the table for members, epoch and k.
func NewChooser(members []Member, epoch uint64, k int) *Chooser {
	return &Chooser{t: newTable(members, epoch, k, true)}
}

// Choose is Table.Choose on the chooser's view and epoch.
func (c *Chooser) Choose(m Member) [][32]byte {
	if !m.Addr.IsValid() {
		return nil
	}
	return c.t.ids(c.t.choose(m))
}

// Table is the view's table (every member's choices).
func (c *Chooser) Table() *Table { return c.t }
