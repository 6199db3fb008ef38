/** The Diff screen (being built: issue 7). */
export function DiffScreen() {
  return (
    <div className="screen empty-state" data-testid="screen-diff">
      <h2>Diff</h2>
      <p>Two models side by side: every tensor ranked by difference, heatmaps and a difference map.</p>
      <p className="muted">Not built yet in this version.</p>
    </div>
  );
}
