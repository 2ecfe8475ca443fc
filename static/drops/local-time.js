// Every page: dates the server wrote in UTC, shown in the visitor's time zone.
import { showLocalTimes } from "./time.js";

showLocalTimes();
