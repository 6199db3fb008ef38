/** The Bytes screen (being built: issue 7). */
export function BytesScreen() {
  return (
    <div className="screen empty-state" data-testid="screen-bytes">
      <h2>Bytes</h2>
      <p>The file's bytes in hex, labelled with the GGUF structure; search and Layer 2 operations.</p>
      <p className="muted">Not built yet in this version.</p>
    </div>
  );
}
