// Data binding (as Django Channels' bindings): a trigger on the table "notes" NOTIFYs every insert,
// update and delete, and subscribers of "table:notes" receive {"op":"insert"|"update"|"delete","row":{..}}.
// Creates the table and its trigger if they are missing. DATABASE_URL defaults to the local test database.
import pg from 'pg';
import { createServer, pgNotify } from 'uws-pubsub-bench';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const db = new pg.Client({ connectionString: url });
await db.connect();
await db.query(`
  CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL);
  CREATE OR REPLACE FUNCTION notes_notify() RETURNS trigger AS $$
  BEGIN
    PERFORM pg_notify('notes_changes', json_build_object(
      'op', lower(TG_OP), 'row', row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))::text);
    RETURN NULL;
  END $$ LANGUAGE plpgsql;
  CREATE OR REPLACE TRIGGER notes_changes AFTER INSERT OR UPDATE OR DELETE ON notes
    FOR EACH ROW EXECUTE FUNCTION notes_notify();
`);
await db.end();

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  monitors: [pgNotify({ url, channels: ['notes_changes'] }, (n, publish) => publish('table:notes', JSON.parse(n.payload)))],
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
