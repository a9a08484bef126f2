// A file the dashboard serves as it is: its text and its Content-Type.
export interface StaticAsset {
  body: string;
  /** Its Content-Type. */
  type: string;
}
