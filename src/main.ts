import { serve } from "./serve.js";

// `npm start`: the serving process (the same one `keygate serve` runs).
void serve();
