package keys

// WaitEnsure waits for the Ensures that Ready started.
func (m *Manager) WaitEnsure() { m.ensureWG.Wait() }
